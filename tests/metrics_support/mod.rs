//! Reading a Prometheus text scrape the way PromQL would: `sum(selector)` over the series that
//! match a metric name (and, if given, exact labels).

#![allow(dead_code)]

/// The series lines of `text`: (`name{labels}`, value).
pub fn series(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series, value.trim().parse().ok()?))
        })
}

/// `sum(selector)`: `selector` is a bare name (every series of that metric, e.g. the per-worker
/// `tern_media_out_total`) or a whole series with its labels. `None` if nothing matches.
pub fn sum(text: &str, selector: &str) -> Option<f64> {
    let mut found = None;
    for (s, v) in series(text) {
        let name = s.split('{').next().unwrap_or(s);
        if s == selector || (!selector.contains('{') && name == selector) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// [`sum`] of a counter or gauge that must be present, as an integer; panics with the scrape.
pub fn require(text: &str, selector: &str) -> u64 {
    sum(text, selector).unwrap_or_else(|| panic!("{selector} missing:\n{text}")) as u64
}

/// A scrape of `/metrics` from the relay at `base` (`http://host:port`).
pub async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("/metrics body")
}

#[cfg(test)]
mod tests {}
