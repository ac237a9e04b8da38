//! Field types with their own TOML spelling: `workers = "all" | [core ids]` and human-readable
//! durations (`"30s"`, `"1m 30s"`, `"500ms"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which cores run datapath workers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Workers {
    /// One worker per core this process may run on (`"all"`).
    #[default]
    All,
    /// One worker per listed core id (`[2, 3]`).
    Cores(Vec<usize>),
}

impl Serialize for Workers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Workers::All => s.serialize_str("all"),
            Workers::Cores(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct WorkersVisitor;
        impl<'de> Visitor<'de> for WorkersVisitor {
            type Value = Workers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of core ids such as [2, 3]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Workers, E> {
                if v == "all" {
                    Ok(Workers::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Workers, A::Error> {
                let mut list = Vec::new();
                while let Some(core) = seq.next_element::<usize>()? {
                    list.push(core);
                }
                Ok(Workers::Cores(list))
            }
        }
        d.deserialize_any(WorkersVisitor)
    }
}

/// The core ids this process may run on (empty if the machine cannot tell).
pub(crate) fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"500ms\" or \"2m\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v)
            .map_err(|e| E::custom(format!("invalid duration {v:?}: {e} (write e.g. \"30s\")")))
    }
}

/// `Duration` as a humantime string.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }
}

/// `Option<Duration>` as an optional humantime string.
pub(crate) mod opt_duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct T {
        w: Workers,
        #[serde(with = "duration")]
        d: Duration,
    }

    #[test]
    fn workers_and_durations_parse_and_print() {
        let t: T = toml::from_str("w = \"all\"\nd = \"1m 30s\"").unwrap();
        assert_eq!(t.w, Workers::All);
        assert_eq!(t.d, Duration::from_secs(90));
        let t: T = toml::from_str("w = [2, 3]\nd = \"250ms\"").unwrap();
        assert_eq!(t.w, Workers::Cores(vec![2, 3]));
        let back: T = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(toml::from_str::<T>("w = \"some\"\nd = \"1s\"").is_err());
        assert!(toml::from_str::<T>("w = \"all\"\nd = \"soon\"").is_err());
        assert!(toml::from_str::<T>("w = \"all\"\nd = 30").is_err());
    }
}
