//! What would fix an error, as data: the caller's setting to change and how. A library message
//! says the fix in its own words ("let jobnet choose one", "check the state file's path") and
//! names no flag; the error also carries the [`Hint`], and each caller words it the way its
//! settings are spelled: the command line its flag (`--vlan auto`, `--state`), a batch-system
//! hook the job's network request (`vlan=auto`) or jobnet.yaml's key (`wait:`). This is the
//! other half of `plan::Origin`, which says where a value came from.

use serde::{Deserialize, Serialize};

/// A fix that is a setting of the caller's. Each caller words every one (an exhaustive match),
/// or leaves out those it has no setting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// Ask for `auto` as the job's VLAN: jobnet chooses a free one.
    VlanAuto,
    /// Leave the VLAN out of the job's request: the job keeps the one it has, or gets one
    /// chosen (none on a fabric without Ethernet).
    VlanDefault,
    /// Ask for `auto` as the job's PKey: jobnet chooses a free one.
    PKeyAuto,
    /// Ask for no partition.
    PKeyNone,
    /// Leave the PKey out of the job's request: the job keeps the one it has, or gets one
    /// chosen where the fabric has InfiniBand.
    PKeyDefault,
    /// The path of the state file.
    StatePath,
    /// How long to wait for a lock, a device's sessions or another process.
    Wait,
    /// How many sessions all jobnet processes together may open to one device.
    SessionsPerDevice,
    /// The path of the device logins (credentials) file.
    CredentialsPath,
    /// Record the host key of a device jobnet has not met yet, on first contact.
    TrustOnFirstUse,
    /// The directory of the site's driver profiles.
    DriversDir,
    /// Another partitions.conf than the topology's.
    PartitionsConf,
}

/// An error that knows which of the caller's settings would fix it.
pub trait Hinted {
    /// The hints, in the order the message gives the fixes; empty when none is a setting.
    fn hints(&self) -> Vec<Hint>;
}

/// `message` with the caller's words for its hints, in one line: `MESSAGE (hint: A; B)`.
/// Hints the caller has no words for (`None`) and repeated words are left out.
pub fn worded(message: &str, hints: &[Hint], word: impl Fn(Hint) -> Option<String>) -> String {
    let mut words: Vec<String> = Vec::new();
    for w in hints.iter().filter_map(|h| word(*h)) {
        if !words.contains(&w) {
            words.push(w);
        }
    }
    if words.is_empty() {
        message.to_string()
    } else {
        format!("{message} (hint: {})", words.join("; "))
    }
}

/// Hints joined in order, each once.
pub fn joined(lists: impl IntoIterator<Item = Vec<Hint>>) -> Vec<Hint> {
    let mut out: Vec<Hint> = Vec::new();
    for h in lists.into_iter().flatten() {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_appended_once_and_unworded_hints_left_out() {
        let word = |h: Hint| match h {
            Hint::Wait => Some("raise --wait".to_string()),
            Hint::StatePath => Some("--state".to_string()),
            _ => None,
        };
        assert_eq!(worded("m", &[], word), "m");
        assert_eq!(worded("m", &[Hint::PartitionsConf], word), "m");
        assert_eq!(
            worded("m", &[Hint::Wait, Hint::StatePath, Hint::Wait], word),
            "m (hint: raise --wait; --state)"
        );
        assert_eq!(
            joined([vec![Hint::Wait], vec![Hint::StatePath, Hint::Wait]]),
            vec![Hint::Wait, Hint::StatePath]
        );
    }
}
