//! A real browser: headless Chromium driven through chromedriver (WebDriver) opens a reset link
//! read out of a received mail, fills the form and submits it; sees the same form refuse the
//! password once the user was disabled; confirms a deletion link; and loads GraphiQL from
//! `GET /graphql` and runs a query with a pasted token, the schema fetched only once the token
//! is there, or, with the development token, at once and without pasting — all with nothing
//! but localhost reachable (GraphiQL's assets come from usersvc itself).

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::create::make_user;
use crate::harness::*;
use crate::smtp_sink::SmtpSink;

/// Makes sure Chromium and its driver are installed: as root on Debian, installs them (as the
/// test harness does for PostgreSQL); otherwise fails saying which command does.
fn ensure_chromium() {
    let present = || {
        std::path::Path::new("/usr/bin/chromium").exists()
            && std::path::Path::new("/usr/bin/chromedriver").exists()
    };
    if present() {
        return;
    }
    let root = nix::unistd::geteuid().is_root();
    assert!(
        root,
        "the browser tests need Chromium: sudo apt-get install -y chromium chromium-driver"
    );
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap();
    if present() {
        return;
    }
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "chromium", "chromium-driver"][..],
    ] {
        let ok = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "apt-get {args:?} failed");
    }
}

struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        ensure_chromium();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let caps: serde_json::Map<String, serde_json::Value> = caps.as_object().unwrap().clone();
        // chromedriver takes a moment to listen: wait until it accepts a session.
        let client = eventually(WAIT, || {
            let caps = caps.clone();
            async move {
                // chromedriver is on localhost over plain HTTP: no TLS stack needed.
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
            }
        })
        .await;
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The text of the first element `css` picks, once there is one. An element found on a
    /// page that is being replaced (after a form is submitted) goes stale: it is looked up again.
    async fn text(&self, css: &str) -> String {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => match e.text().await {
                Ok(text) => text,
                Err(e) if e.is_stale_element_reference() => Box::pin(self.text(css)).await,
                Err(e) => panic!("{css}: {e}"),
            },
            Err(e) => {
                let page = self.client.source().await.unwrap_or_default();
                panic!("{css}: {e}; the page is:\n{page}")
            }
        }
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// chromedriver goes with the browser, also when a failing test unwinds past `close`.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn a_person_resets_a_password_and_deletes_an_account_in_a_browser() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "zoe@example.com").await;
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    let link = sink.wait_for(1, WAIT).await[0]
        .find_link("/self-service/reset-password?token=")
        .unwrap();

    let b = Browser::start().await;
    b.client.goto(&link).await.unwrap();
    assert!(b.text("h1").await.contains("Choose a new password"));
    b.client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("a fine new password")
        .await
        .unwrap();
    b.client
        .find(Locator::Id("confirmation"))
        .await
        .unwrap()
        .send_keys("a fine new password")
        .await
        .unwrap();
    b.client
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        b.text("#result")
            .await
            .contains("Your password has been changed")
    );

    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { createSelfServiceDeletionUrl(input: {profileId: $id}) { url } }",
            json!({ "id": id }),
        )
        .await;
    let url = v["data"]["createSelfServiceDeletionUrl"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    b.client.goto(&url).await.unwrap();
    assert!(b.text("h1").await.contains("Delete your a account?"));
    b.client
        .find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        b.text("#result")
            .await
            .contains("Your account has been deleted")
    );
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "query($id: ID!) { userInfo(profileId: $id) { profileId } }",
            json!({ "id": id }),
        )
        .await;
    assert!(v["data"]["userInfo"].is_null());
    b.close().await;
}

#[tokio::test]
async fn graphiql_runs_a_query_with_a_pasted_token() {
    let t = TestApp::new().await;
    make_user(&t, "a", "gil@example.com").await;
    let b = Browser::start().await;
    b.client.goto(&format!("{}/graphql", t.base)).await.unwrap();
    b.text(".graphiql-container").await;
    // Paste the token into the Headers editor (a CodeMirror instance), as a person would.
    let headers = json!({ "Authorization": format!("Bearer {}", t.token("a", ALL)) }).to_string();
    let client = &b.client;
    eventually(WAIT, || {
        let headers = headers.clone();
        async move {
            let r = client
                .execute(
                    "const eds = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')];
                     const h = eds.find(e => e.CodeMirror && e.CodeMirror.getValue().includes('Authorization'));
                     if (!h) return false;
                     window.pastedAt = performance.now();
                     h.CodeMirror.setValue(arguments[0]);
                     return true;",
                    vec![json!(headers)],
                )
                .await
                .unwrap();
            if r == json!(true) {
                Ok(())
            } else {
                Err("GraphiQL's headers editor is not there yet")
            }
        }
    })
    .await;
    let v = run_query(client, "totalCount").await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(1), "{v}");
    assert_eq!(
        v["data"]["users"]["nodes"][0]["contactEmail"],
        json!("gil@example.com")
    );
    // Nothing went to /graphql before the token was there: the schema was fetched after it
    // (and answered), then the query.
    let fetches = eventually(WAIT, || async move {
        let fetches = graphql_fetches(client).await;
        if fetches.len() >= 2 {
            Ok(fetches)
        } else {
            Err(format!("the schema and the query: {fetches:?}"))
        }
    })
    .await;
    let pasted_at = client
        .execute("return window.pastedAt;", vec![])
        .await
        .unwrap();
    let pasted_at = pasted_at.as_f64().unwrap();
    for (started, status) in &fetches {
        assert!(
            *started >= pasted_at,
            "a fetch before the token: {fetches:?}"
        );
        assert_eq!(*status, 200, "{fetches:?}");
    }
    b.close().await;
}

/// The page's requests to /graphql so far: when each started (page time, ms) and its status.
async fn graphql_fetches(client: &Client) -> Vec<(f64, u64)> {
    let entries = client
        .execute(
            "return performance.getEntriesByType('resource')
                .filter(e => new URL(e.name).pathname === '/graphql' && e.initiatorType === 'fetch')
                .map(e => [e.startTime, e.responseStatus]);",
            vec![],
        )
        .await
        .unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_f64().unwrap(), e[1].as_u64().unwrap_or(0)))
        .collect()
}

/// Clicks GraphiQL's run button and returns the result pane once it holds `expect`.
async fn run_query(client: &Client, expect: &str) -> serde_json::Value {
    client
        .find(Locator::Css(".graphiql-execute-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = eventually(WAIT, || async move {
        let result = client
            .execute(
                "const r = document.querySelector('.result-window .CodeMirror');
                 return r && r.CodeMirror ? r.CodeMirror.getValue() : '';",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or("")
            .to_owned();
        if result.contains(expect) {
            Ok(result)
        } else {
            Err(format!("result pane: {result}"))
        }
    })
    .await;
    serde_json::from_str(&result).unwrap_or_else(|_| panic!("result pane: {result}"))
}

#[tokio::test]
async fn graphiql_starts_with_the_development_token_and_the_schema_loaded() {
    let dev_token = token_for("a", ALL);
    let t = TestApp::with(Options {
        http: usersvc::http::HttpSettings {
            graphiql_token: Some(dev_token.clone()),
            ..Options::default().http
        },
        ..Options::default()
    })
    .await;
    make_user(&t, "a", "dev@example.com").await;
    let b = Browser::start().await;
    b.client.goto(&format!("{}/graphql", t.base)).await.unwrap();
    b.text(".graphiql-container").await;
    let client = &b.client;
    // The schema is fetched at once, with the token, and answered.
    let fetches = eventually(WAIT, || async move {
        let fetches = graphql_fetches(client).await;
        if fetches.iter().any(|(_, status)| *status == 200) {
            Ok(fetches)
        } else {
            Err(format!("no schema fetched yet: {fetches:?}"))
        }
    })
    .await;
    assert!(fetches.iter().all(|(_, s)| *s == 200), "{fetches:?}");
    let headers = client
        .execute(
            "const eds = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')];
             const h = eds.find(e => e.CodeMirror && e.CodeMirror.getValue().includes('Authorization'));
             return h ? h.CodeMirror.getValue() : '';",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        headers.as_str().unwrap().contains(&dev_token),
        "headers editor: {headers}"
    );
    // The default query runs as it is, with no token pasted.
    let v = run_query(client, "totalCount").await;
    assert_eq!(v["data"]["users"]["totalCount"], json!(1), "{v}");
    b.close().await;
}

#[tokio::test]
async fn a_reset_page_opened_before_the_user_was_disabled_refuses_the_new_password() {
    let sink = SmtpSink::start();
    let t = TestApp::with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    let id = make_user(&t, "a", "dis@example.com").await;
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { sendPasswordResetEmail(input: {profileId: $id}) { emailId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&v), "", "{v}");
    let link = sink.wait_for(1, WAIT).await[0]
        .find_link("/self-service/reset-password?token=")
        .unwrap();

    let b = Browser::start().await;
    b.client.goto(&link).await.unwrap();
    assert!(b.text("h1").await.contains("Choose a new password"));
    for field in ["password", "confirmation"] {
        b.client
            .find(Locator::Id(field))
            .await
            .unwrap()
            .send_keys("a takeover password")
            .await
            .unwrap();
    }
    // Support disables the account while the page is open.
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            "mutation($id: ID!) { disableUser(input: {profileId: $id, reason: \"account takeover\"}) { user { status } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        v["data"]["disableUser"]["user"]["status"],
        json!("DISABLED"),
        "{v}"
    );
    b.client
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(b.text("h1").await, "Link replaced");
    b.client.goto(&link).await.unwrap();
    assert_eq!(b.text("h1").await, "Link replaced");
    b.close().await;

    // The old password still stands: it proves right (and the user is told it is disabled);
    // the one typed into the page is wrong.
    let verify = "mutation($p: String!) { verifyPassword(input: {type: EMAIL, externalId: \"dis@example.com\", password: $p}) { user { profileId } } }";
    let (_, v) = t
        .gql(
            &t.token("a", ALL),
            verify,
            json!({ "p": "a takeover password" }),
        )
        .await;
    assert_eq!(code(&v), "INVALID_CREDENTIALS");
    let (_, v) = t
        .gql(&t.token("a", ALL), verify, json!({ "p": "password-123" }))
        .await;
    assert_eq!(code(&v), "USER_DISABLED");
}
