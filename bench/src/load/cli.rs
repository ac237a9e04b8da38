//! The `tern-load` command line, parsed by hand like the other bench binaries: every option as
//! `--name value` or `--name=value`, every error naming the option and what it wants.

use std::path::PathBuf;
use std::time::Duration;

use tern::srtp::Profile;

use super::{LoadConfig, Progress, Scenario};

/// The usage text.
pub const USAGE: &str = "usage: tern-load --url URL --token TOKEN [options]

Loads a WHIP/WHEP server with synthetic audio/video and measures one-way latency and loss.

  --url URL[,URL…]          server base URL (http://127.0.0.1:8080); a cluster's nodes as a
                            list: sessions are spread over them in turn
  --subscribe-url URL[,…]   subscribers go to these instead (e.g. a cluster's edges)
  --token TOKEN             Bearer token with publish and subscribe grants for the room
  --scenario NAME           broadcast (default) | conference | audio-rooms
  --publishers N            broadcast: publishers (streams pub-0..), default 1
  --subscribers N           broadcast: subscribers per publisher, default 10
  --participants N          conference / audio-rooms: participants (per room), default 4
  --rooms N                 audio-rooms: groups of participants, default 2
  --room NAME               signalling room, default load
  --video RATE              video bitrate: 1500kbps, 2mbps, 800000 or 0 for none (default 1500kbps)
  --fps N                   video frame rate, default 30
  --keyframe-interval DUR   time between keyframes, default 2s
  --pacing FACTOR           send each frame's packets spread at FACTOR × the video bitrate, as a
                            browser's pacer does (Chromium: 2.5); default: one burst per frame
  --audio / --no-audio      send an audio track (default on)
  --duration DUR            measurement time, default 20s
  --warmup DUR              wait between all sessions up and measuring, default 1s
  --profile gcm|cm80        SRTP profile offered (AEAD_AES_128_GCM or AES_CM_128_HMAC_SHA1_80)
  --connect-timeout DUR     deadline of each setup phase and of first media, default 10s
  --setup-concurrency N     sessions set up at once, default 16
  --rx-threads N            receiver threads, default 1
  --tx-threads N            sender threads, default 1
  --relay-pid PID           read the relay's CPU time from /proc/PID/stat
  --simulate-loss RATIO     subscribers drop this fraction of RTP on receipt (e.g. 0.01) to
                            exercise NACK and retransmission; default 0
  --json FILE               write the figures as JSON
  --html FILE               write a self-contained HTML report
  --quiet                   no progress output
  --help                    this text

Exit status: 0 when every session worked, 1 when any failed, 2 for bad usage.";

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// The run.
    pub config: LoadConfig,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--html`.
    pub html: Option<PathBuf>,
    /// `--help` was given.
    pub help: bool,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut cfg = LoadConfig::default();
    let (mut json, mut html, mut help) = (None, None, false);
    let mut scenario = "broadcast".to_string();
    let (mut publishers, mut subscribers, mut participants, mut rooms) = (1, 10, 4, 2);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().ok_or(format!("{name} needs a value")),
            }
        };
        match name {
            "--url" => cfg.url = value()?,
            "--subscribe-url" => cfg.subscribe_url = Some(value()?),
            "--token" => cfg.token = value()?,
            "--scenario" => scenario = value()?,
            "--publishers" => publishers = count(name, &value()?)?,
            "--subscribers" => subscribers = count(name, &value()?)?,
            "--participants" => participants = count(name, &value()?)?,
            "--rooms" => rooms = count(name, &value()?)?,
            "--room" => cfg.room = value()?,
            "--video" => cfg.media.video_bps = bitrate(&value()?)?,
            "--fps" => {
                cfg.media.fps = count(name, &value()?)? as u32;
                if cfg.media.fps == 0 || cfg.media.fps > 240 {
                    return Err("--fps must be from 1 to 240".into());
                }
            }
            "--keyframe-interval" => cfg.media.keyframe_interval = duration(name, &value()?)?,
            "--pacing" => {
                let v = value()?;
                let factor: f64 = v
                    .parse()
                    .ok()
                    .filter(|f: &f64| f.is_finite() && *f >= 1.0)
                    .ok_or(format!(
                        "--pacing {v}: expected a multiple of the bitrate, at least 1 (Chromium: 2.5)"
                    ))?;
                cfg.media.pacing = Some(factor);
            }
            "--audio" => cfg.media.audio = true,
            "--no-audio" => cfg.media.audio = false,
            "--duration" => cfg.duration = duration(name, &value()?)?,
            "--warmup" => cfg.warmup = duration(name, &value()?)?,
            "--profile" => {
                cfg.profile = match value()?.to_ascii_lowercase().as_str() {
                    "gcm" | "aead_aes_128_gcm" => Profile::AeadAes128Gcm,
                    "cm80" | "cm" | "aes_cm_128_hmac_sha1_80" => Profile::Aes128CmHmacSha1_80,
                    other => return Err(format!("--profile {other}: expected gcm or cm80")),
                }
            }
            "--connect-timeout" => cfg.connect_timeout = duration(name, &value()?)?,
            "--setup-concurrency" => cfg.setup_concurrency = count(name, &value()?)?.max(1),
            "--rx-threads" => cfg.rx_threads = count(name, &value()?)?.clamp(1, 64),
            "--tx-threads" => cfg.tx_threads = count(name, &value()?)?.clamp(1, 64),
            "--relay-pid" => {
                let v = value()?;
                cfg.relay_pid = Some(
                    v.parse()
                        .map_err(|_| format!("--relay-pid {v}: not a process id"))?,
                )
            }
            "--simulate-loss" => {
                let v = value()?;
                cfg.simulate_loss = v
                    .parse()
                    .map_err(|_| format!("--simulate-loss {v}: expected a ratio such as 0.01"))?
            }
            "--json" => json = Some(PathBuf::from(value()?)),
            "--html" => html = Some(PathBuf::from(value()?)),
            "--quiet" | "-q" => cfg.progress = Progress::Off,
            "--help" | "-h" => help = true,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    cfg.scenario = match scenario.as_str() {
        "broadcast" => Scenario::Broadcast {
            publishers,
            subscribers,
        },
        "conference" => Scenario::Conference { participants },
        "audio-rooms" => Scenario::AudioRooms {
            rooms,
            participants,
        },
        other => {
            return Err(format!(
                "--scenario {other}: expected broadcast, conference or audio-rooms"
            ))
        }
    };
    Ok(Args {
        config: cfg,
        json,
        html,
        help,
    })
}

fn count(name: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("{name} {v}: expected a whole number"))
}

fn duration(name: &str, v: &str) -> Result<Duration, String> {
    humantime_like(v).ok_or(format!(
        "{name} {v}: expected a duration such as 20s, 500ms or 2m"
    ))
}

/// `20s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.
fn humantime_like(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..1e7).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// `1500kbps`, `1.5mbps`, `800000` (bits/s), `0`.
fn bitrate(v: &str) -> Result<u64, String> {
    let lower = v.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("--video {v}: expected e.g. 1500kbps, 2mbps or 0"))?;
    let mult = match unit {
        "" | "bps" => 1.0,
        "k" | "kbps" | "kbit" | "kbit/s" => 1e3,
        "m" | "mbps" | "mbit" | "mbit/s" => 1e6,
        _ => {
            return Err(format!(
                "--video {v}: unknown unit '{unit}' (use kbps or mbps)"
            ))
        }
    };
    let bps = n * mult;
    if !(0.0..=1e9).contains(&bps) {
        return Err(format!("--video {v}: out of range"));
    }
    Ok(bps as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn pacing_is_a_factor_of_at_least_one() {
        let a = parse(&args("--url http://x --token t --pacing 2.5")).unwrap();
        assert_eq!(a.config.media.pacing, Some(2.5));
        let default = parse(&args("--url http://x --token t")).unwrap();
        assert_eq!(default.config.media.pacing, None, "bursts by default");
        for bad in ["0.5", "fast", "NaN"] {
            let e = parse(&args(&format!("--url http://x --token t --pacing {bad}"))).unwrap_err();
            assert!(e.contains("--pacing"), "{e}");
        }
    }

    #[test]
    fn the_issue_example_parses() {
        let a = parse(&args(
            "--url http://127.0.0.1:8080 --token abc --scenario broadcast --publishers 1 \
             --subscribers 50 --video 1500kbps --duration 20s --json out.json --html out.html",
        ))
        .unwrap();
        assert_eq!(
            a.config.scenario,
            Scenario::Broadcast {
                publishers: 1,
                subscribers: 50
            }
        );
        assert_eq!(a.config.media.video_bps, 1_500_000);
        assert_eq!(a.config.duration, Duration::from_secs(20));
        assert_eq!(a.json, Some(PathBuf::from("out.json")));
        assert_eq!(a.html, Some(PathBuf::from("out.html")));
    }

    #[test]
    fn values_and_errors() {
        let a = parse(&args(
            "--scenario=conference --participants=8 --profile cm80 --no-audio --video 2mbps",
        ))
        .unwrap();
        assert_eq!(a.config.scenario, Scenario::Conference { participants: 8 });
        assert_eq!(a.config.profile, Profile::Aes128CmHmacSha1_80);
        assert!(!a.config.media.audio);
        assert_eq!(a.config.media.video_bps, 2_000_000);
        assert!(parse(&args("--video fast"))
            .unwrap_err()
            .contains("--video"));
        assert!(parse(&args("--duration"))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&args("--scenario mesh"))
            .unwrap_err()
            .contains("--scenario"));
        assert!(parse(&args("--bogus")).unwrap_err().contains("--bogus"));
        assert_eq!(humantime_like("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(humantime_like("2m"), Some(Duration::from_secs(120)));
        assert_eq!(humantime_like("x"), None);
    }
}
