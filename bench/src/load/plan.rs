//! Which sessions a scenario opens, in which rooms and streams, and the words and JSON that
//! describe a run. Pure: no I/O.

use serde_json::json;

use super::sdp::TrackKind;
use super::LoadConfig;

/// Which sessions a run opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `publishers` streams `pub-0..`, each received by `subscribers` subscribers.
    Broadcast {
        /// Publishers.
        publishers: usize,
        /// Subscribers per publisher.
        subscribers: usize,
    },
    /// `participants` each publish `p-i` and subscribe to every other participant.
    Conference {
        /// Participants.
        participants: usize,
    },
    /// `rooms` groups of `participants` (streams `g{r}-p{k}`, audio only), each participant
    /// subscribing to the others of its group. The groups share one signalling room, since a
    /// token grants one room.
    AudioRooms {
        /// Groups.
        rooms: usize,
        /// Participants per group.
        participants: usize,
    },
}

impl Scenario {
    /// The scenario's CLI name.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Broadcast { .. } => "broadcast",
            Scenario::Conference { .. } => "conference",
            Scenario::AudioRooms { .. } => "audio-rooms",
        }
    }
}

/// A planned session.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) room: String,
    pub(super) stream: String,
    pub(super) kinds: Vec<TrackKind>,
    /// Subscribers: the publisher they receive.
    pub(super) publisher: Option<usize>,
}

pub(super) fn plan(cfg: &LoadConfig) -> (Vec<Plan>, Vec<Plan>) {
    let mut pubs = Vec::new();
    let mut subs = Vec::new();
    let room = cfg.room.clone();
    let kinds = cfg.media.kinds();
    let mut add_pub = |stream: String, kinds: Vec<TrackKind>| {
        pubs.push(Plan {
            room: room.clone(),
            stream,
            kinds,
            publisher: None,
        });
        pubs.len() - 1
    };
    match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => {
            for p in 0..publishers {
                let i = add_pub(format!("pub-{p}"), kinds.clone());
                for _ in 0..subscribers {
                    subs.push(i);
                }
            }
        }
        Scenario::Conference { participants } => {
            let ids: Vec<usize> = (0..participants)
                .map(|p| add_pub(format!("p-{p}"), kinds.clone()))
                .collect();
            for (me, _) in ids.iter().enumerate() {
                for (other, &i) in ids.iter().enumerate() {
                    if other != me {
                        subs.push(i);
                    }
                }
            }
        }
        Scenario::AudioRooms {
            rooms,
            participants,
        } => {
            for r in 0..rooms {
                let ids: Vec<usize> = (0..participants)
                    .map(|k| add_pub(format!("g{r}-p{k}"), vec![TrackKind::Audio]))
                    .collect();
                for me in 0..ids.len() {
                    for (other, &i) in ids.iter().enumerate() {
                        if other != me {
                            subs.push(i);
                        }
                    }
                }
            }
        }
    }
    let subs = subs
        .into_iter()
        .map(|i| Plan {
            room: pubs[i].room.clone(),
            stream: pubs[i].stream.clone(),
            kinds: pubs[i].kinds.clone(),
            publisher: Some(i),
        })
        .collect();
    (pubs, subs)
}

pub(super) fn title(cfg: &LoadConfig) -> String {
    let sizes = match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => format!("{publishers} publisher(s) → {subscribers} subscriber(s) each"),
        Scenario::Conference { participants } => {
            format!(
                "{participants} participants, each receiving the other {}",
                participants - 1
            )
        }
        Scenario::AudioRooms {
            rooms,
            participants,
        } => format!("{rooms} group(s) × {participants} participants in one room"),
    };
    let media = match cfg.scenario {
        Scenario::AudioRooms { .. } => "audio only".to_string(),
        _ => {
            let mut parts = Vec::new();
            if cfg.media.audio {
                parts.push("audio".to_string());
            }
            if cfg.media.video_bps > 0 {
                parts.push(format!(
                    "video {} kbps {} fps",
                    cfg.media.video_bps / 1000,
                    cfg.media.fps
                ));
            }
            parts.join(" + ")
        }
    };
    format!(
        "{} {sizes}, {media}, {:?} measured, SRTP {}, {}",
        cfg.scenario.name(),
        cfg.duration,
        cfg.profile,
        cfg.url
    )
}

pub(super) fn config_json(cfg: &LoadConfig) -> serde_json::Value {
    let (publishers, subscribers, participants, rooms) = match cfg.scenario {
        Scenario::Broadcast {
            publishers,
            subscribers,
        } => (Some(publishers), Some(subscribers), None, None),
        Scenario::Conference { participants } => (None, None, Some(participants), None),
        Scenario::AudioRooms {
            rooms,
            participants,
        } => (None, None, Some(participants), Some(rooms)),
    };
    json!({
        "url": cfg.url,
        "scenario": cfg.scenario.name(),
        "publishers": publishers,
        "subscribers": subscribers,
        "participants": participants,
        "rooms": rooms,
        "room": cfg.room,
        "audio": cfg.media.audio,
        "video_bps": cfg.media.video_bps,
        "fps": cfg.media.fps,
        "keyframe_interval_s": cfg.media.keyframe_interval.as_secs_f64(),
        "pacing": cfg.media.pacing,
        "duration_s": cfg.duration.as_secs_f64(),
        "warmup_s": cfg.warmup.as_secs_f64(),
        "profile": cfg.profile.name(),
        "connect_timeout_s": cfg.connect_timeout.as_secs_f64(),
        "relay_pid": cfg.relay_pid,
        "simulate_loss": cfg.simulate_loss,
        "machine": crate::machine_summary(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_have_the_right_shape() {
        let mut cfg = LoadConfig {
            token: "t".into(),
            ..LoadConfig::default()
        };
        cfg.scenario = Scenario::Broadcast {
            publishers: 2,
            subscribers: 3,
        };
        let (p, s) = plan(&cfg);
        assert_eq!((p.len(), s.len()), (2, 6));
        assert_eq!(s[5].stream, "pub-1");
        cfg.scenario = Scenario::Conference { participants: 8 };
        let (p, s) = plan(&cfg);
        assert_eq!((p.len(), s.len()), (8, 56));
        assert!(s.iter().all(|x| x.kinds.len() == 2));
        cfg.scenario = Scenario::AudioRooms {
            rooms: 3,
            participants: 4,
        };
        let (p, s) = plan(&cfg);
        assert_eq!((p.len(), s.len()), (12, 36));
        assert!(s.iter().all(|x| x.kinds == vec![TrackKind::Audio]));
    }
}
