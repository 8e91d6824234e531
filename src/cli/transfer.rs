//! `usersvc import` and `usersvc export`: users in and out as NDJSON, one `ImportUserInput`
//! per line, for files of any size.
//!
//! Import reads the file on a thread of its own, a line at a time, and hands batches of up to
//! 1,000 parsed users to the import service over a channel of two batches, so memory stays
//! the same whatever the file's size; the service writes each batch with multi-row statements,
//! two batches at a time unless they name a common user (ids and identities).
//! Lines that fail (unparsable JSON, or a user the service refused) go to
//! `FILE.rejects.ndjson` with their line number, error and the line itself. Export pages
//! through the app in profile id order and writes each page as it comes.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::ValueEnum;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use unicode_normalization::UnicodeNormalization;

use super::failure;
use crate::auth::Caller;
use crate::db::Db;
use crate::passwords::Hasher;
use crate::users::import::{
    self, ImportFailure, ImportMode, ImportStatus, ImportUser, MAX_IMPORT_BATCH, export,
};

/// How `usersvc import` treats users that exist.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(super) enum Mode {
    /// Existing users fail with USER_ALREADY_EXISTS.
    CreateOnly,
    /// Existing users are updated in place; unchanged ones are skipped (resumes an import).
    Upsert,
}

/// How often progress is printed when stderr is not a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Progress: a bar on a terminal, a line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
    started: Instant,
    last_line: Instant,
    total: Option<u64>,
}

impl Progress {
    fn new(what: &'static str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows {per_sec} ETA {eta}"
            } else {
                "{spinner} [{elapsed_precise}] {pos} rows {per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            what,
            started: Instant::now(),
            last_line: Instant::now(),
            total,
        }
    }

    fn set(&mut self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
            return;
        }
        if self.last_line.elapsed() >= PROGRESS_EVERY {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
            eprintln!(
                "{}: {rows}{of} rows, {:.0} rows/s, {:.0} s",
                self.what,
                rows as f64 / secs,
                secs
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A parsed line, or why it could not be parsed.
struct Line {
    number: u64,
    text: String,
    user: Result<ImportUser, String>,
}

/// Reads `input` a line at a time on its own thread; sends batches of up to
/// [`MAX_IMPORT_BATCH`] lines.
fn read_batches(input: Box<dyn Read + Send>, batches: mpsc::Sender<std::io::Result<Vec<Line>>>) {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut batch = Vec::with_capacity(MAX_IMPORT_BATCH);
    let mut number = 0u64;
    loop {
        let mut text = String::new();
        match reader.read_line(&mut text) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = batches.blocking_send(Err(e));
                return;
            }
        }
        number += 1;
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.trim().is_empty() {
            continue;
        }
        let user = serde_json::from_str::<ImportUser>(trimmed).map_err(|e| e.to_string());
        text.truncate(trimmed.len());
        batch.push(Line { number, text, user });
        if batch.len() == MAX_IMPORT_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(MAX_IMPORT_BATCH));
            if batches.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(Ok(batch));
    }
}

/// The number of lines of a file.
fn count_lines(file: &Path) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(file)?);
    let mut n = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
}

/// Where the rejected lines of `file` go.
fn rejects_path(file: &Path) -> PathBuf {
    if file == Path::new("-") {
        return PathBuf::from("stdin.rejects.ndjson");
    }
    let mut name = file.as_os_str().to_owned();
    name.push(".rejects.ndjson");
    PathBuf::from(name)
}

/// The rejects file, created at the first reject.
struct Rejects {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    count: u64,
}

impl Rejects {
    fn write(&mut self, number: u64, text: &str, error: &ImportFailure) -> anyhow::Result<()> {
        if self.out.is_none() {
            let file = File::create(&self.path)
                .with_context(|| format!("creating {}", self.path.display()))?;
            self.out = Some(BufWriter::new(file));
        }
        let original: Value =
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        let entry = json!({ "line": number, "error": error, "input": original });
        if let Some(out) = &mut self.out {
            serde_json::to_writer(&mut *out, &entry)?;
            out.write_all(b"\n")?;
        }
        self.count += 1;
        Ok(())
    }
}

/// Batches written at once: while PostgreSQL writes one, the next one's checks run beside it.
const IN_FLIGHT: usize = 2;

/// A batch the service has written, with what its lines need for the report.
struct Written {
    read: u64,
    report: import::ImportReport,
    lines: Vec<(u64, String)>,
    refused: Vec<(u64, String, ImportFailure)>,
}

/// The users read so far, by outcome: created, updated, unchanged, failed.
#[derive(Default)]
struct Tally {
    rows: u64,
    counts: [u64; 4],
}

impl Tally {
    /// Counts a written batch and writes its rejected lines, in line order.
    fn settle(&mut self, written: Written, rejects: &mut Rejects) -> anyhow::Result<()> {
        let Written {
            read,
            report,
            mut lines,
            mut refused,
        } = written;
        self.rows += read;
        self.counts[3] += refused.len() as u64;
        for result in report.results {
            let slot = match result.status {
                ImportStatus::Created => 0,
                ImportStatus::Updated => 1,
                ImportStatus::Unchanged => 2,
                ImportStatus::Failed => 3,
            };
            self.counts[slot] += 1;
            if let Some(error) = result.error {
                let (number, text) = std::mem::take(&mut lines[result.index]);
                refused.push((number, text, error));
            }
        }
        refused.sort_by_key(|(number, _, _)| *number);
        for (number, text, error) in &refused {
            rejects.write(*number, text, error)?;
        }
        Ok(())
    }
}

/// What a batch's users are known by: their given ids and their identities, loosely normalised
/// (case, width, surrounding space), so that two batches that could name the same user are
/// never written at once.
fn user_keys(users: &[ImportUser]) -> HashSet<String> {
    let loose = |s: &str| s.nfkc().collect::<String>().trim().to_lowercase();
    let mut keys = HashSet::new();
    for u in users {
        if let Some(id) = &u.profile_id {
            keys.insert(format!("id\0{}", loose(id)));
        }
        for i in &u.identities {
            keys.insert(format!(
                "{}\0{}\0{}",
                loose(&i.kind),
                loose(i.external_auth_type.as_deref().unwrap_or("")),
                loose(&i.external_id)
            ));
        }
    }
    keys
}

/// `usersvc import --app ID FILE [--mode …]`.
pub(super) async fn import(app: String, file: PathBuf, mode: Mode, db: Db) -> anyhow::Result<()> {
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(&file).with_context(|| format!("opening {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mode = match mode {
        Mode::CreateOnly => ImportMode::CreateOnly,
        Mode::Upsert => ImportMode::Upsert,
    };
    let caller = Caller::system(app.clone(), "cli:import");
    let hasher = Hasher::new(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut rejects = Rejects {
        path: rejects_path(&file),
        out: None,
        count: 0,
    };
    // A rejects file from an earlier run describes that run, not this one.
    let _ = std::fs::remove_file(&rejects.path);
    // On a terminal, the lines are counted first (a fast pass) so the bar can show an ETA.
    let total = match (&size, std::io::stderr().is_terminal()) {
        (Some(_), true) => count_lines(&file).ok(),
        _ => None,
    };
    let (tx, mut rx) = mpsc::channel(2);
    let reader = std::thread::spawn(move || read_batches(input, tx));
    let mut progress = Progress::new("import", total);
    let mut tally = Tally::default();
    // Batches being written, oldest first, with the users each one names.
    let mut flight = FuturesOrdered::new();
    let mut flight_keys: VecDeque<HashSet<String>> = VecDeque::new();
    while let Some(batch) = rx.recv().await {
        let batch = batch.context("reading the import file")?;
        let mut lines = Vec::with_capacity(batch.len());
        let mut users = Vec::with_capacity(batch.len());
        // Written in line order once the batch is through.
        let mut refused = Vec::new();
        let read = batch.len() as u64;
        for Line { number, text, user } in batch {
            match user {
                Ok(user) => {
                    users.push(user);
                    lines.push((number, text));
                }
                Err(e) => {
                    let failure = ImportFailure {
                        code: "BAD_USER_INPUT",
                        reason_code: Some(40660),
                        message: format!("not an ImportUserInput: {e}"),
                    };
                    refused.push((number, text, failure));
                }
            }
        }
        // A batch that names a user of one being written waits for it, as it would have
        // one batch at a time; and at most IN_FLIGHT are written at once.
        let keys = user_keys(&users);
        let overlaps = flight_keys.iter().any(|k| !k.is_disjoint(&keys));
        while !flight.is_empty() && (overlaps || flight.len() >= IN_FLIGHT) {
            if let Some(written) = flight.next().await {
                flight_keys.pop_front();
                tally.settle(written?, &mut rejects)?;
                progress.set(tally.rows);
            }
            if !overlaps {
                break;
            }
        }
        let (db, hasher, caller) = (&db, &hasher, &caller);
        flight.push_back(async move {
            let report = import::import_users(&mut db.pool(), hasher, caller, users, mode)
                .await
                .map_err(failure)?;
            anyhow::Ok(Written {
                read,
                report,
                lines,
                refused,
            })
        });
        flight_keys.push_back(keys);
    }
    while let Some(written) = flight.next().await {
        tally.settle(written?, &mut rejects)?;
        progress.set(tally.rows);
    }
    let Tally { rows, counts } = tally;
    progress.finish();
    let _ = reader.join();
    if let Some(out) = &mut rejects.out {
        out.flush()?;
    }
    let [created, updated, unchanged, failed] = counts;
    println!(
        "import into app {app}: {rows} users read; {created} created, {updated} updated, \
         {unchanged} unchanged, {failed} failed ({:.1} s)",
        progress.started.elapsed().as_secs_f64()
    );
    if rejects.count > 0 {
        anyhow::bail!(
            "{} users were not imported: see {} (fix them and re-run with --mode upsert)",
            rejects.count,
            rejects.path.display()
        );
    }
    Ok(())
}

/// Users per page of an export.
const EXPORT_PAGE: i64 = 1000;

/// `usersvc export --app ID [--out FILE] [--include-password-hashes]`.
pub(super) async fn export(
    app: String,
    out: Option<PathBuf>,
    with_hashes: bool,
    db: Db,
) -> anyhow::Result<()> {
    let caller = Caller::system(app.clone(), "cli:export");
    let total = export::count(&mut db.pool(), &caller)
        .await
        .map_err(failure)?;
    let sink: Box<dyn Write> = match &out {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::with_capacity(1 << 20, sink);
    let mut progress = Progress::new("export", u64::try_from(total).ok());
    let (mut after, mut rows) = (None, 0u64);
    loop {
        let page = export::page(&mut db.pool(), &caller, after, EXPORT_PAGE, with_hashes)
            .await
            .map_err(failure)?;
        for user in &page.users {
            serde_json::to_writer(&mut sink, user)?;
            sink.write_all(b"\n")?;
        }
        rows += page.users.len() as u64;
        progress.set(rows);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    sink.flush()?;
    progress.finish();
    if out.is_some() {
        println!(
            "export of app {app}: {rows} users ({:.1} s)",
            progress.started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
