//! Per-route figures for `/metrics`: requests by route, method and status, and their duration
//! by route. Each series is registered once and kept, so a request records into it without
//! building its key and labels again (as [`super::field_metrics`] does for root fields).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

use super::documents::lock;
use super::field_metrics::{Kept, kept};

/// Counts one served request.
pub fn count(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    let series = Route::of(route);
    series.duration.record(elapsed.as_secs_f64());
    series.requests(method, status).increment(1);
}

/// One route's series.
struct Route {
    route: String,
    duration: Histogram,
    /// The request counters by method and status; a route answers with a handful of each.
    requests: Mutex<Vec<(&'static str, u16, Counter)>>,
}

impl Route {
    /// The series of `route`: one of the router's paths, or `unmatched`, so the map stays as
    /// small as the router.
    fn of(route: &str) -> Arc<Route> {
        static ROUTES: Kept<Arc<Route>> = OnceLock::new();
        kept(&ROUTES, route, || {
            Arc::new(Route {
                route: route.to_owned(),
                duration: metrics::histogram!("usersvc_http_request_duration_seconds", "route" => route.to_owned()),
                requests: Mutex::default(),
            })
        })
    }

    fn requests(&self, method: &'static str, status: u16) -> Counter {
        let mut requests = lock(&self.requests);
        if let Some((_, _, counter)) = requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            return counter.clone();
        }
        let counter = metrics::counter!(
            "usersvc_http_requests_total",
            "route" => self.route.clone(),
            "method" => method,
            "status" => status.to_string()
        );
        requests.push((method, status, counter.clone()));
        counter
    }
}
