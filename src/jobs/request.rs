//! What a job asks of the network: a VLAN, a partition, a gateway, how many VMs per node. Read
//! from the site's policy and from a token the user writes into text the batch system passes to
//! its hooks (Slurm's `--comment`, `--extra`), where it coexists with any other text:
//!
//! ```text
//! --comment 'nightly run jobnet:vlan=auto,ib=yes,gateway=gw1,vms=2 (see ticket 42)'
//! ```
//!
//! Keys: `vlan` (`auto`, `none` or a number), `ib` / `pkey` (`yes`/`auto`, `no`/`none`, or a PKey
//! such as `0x1000`), `gateway` (a gateway of the topology), `vms` (VMs per node, 1..64). A bare
//! `jobnet` asks for the defaults. Values are strict words: nothing of the token reaches a device
//! unchecked (VLAN and PKey are typed, the gateway must exist in the topology).

use crate::base::types::{PKey, VlanId};
use crate::plan::{Choice, PKeyChoice};

/// A job's network request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRequest {
    pub vlan: Choice<VlanId>,
    pub pkey: PKeyChoice,
    pub gateway: Option<String>,
    /// VMs (or containers) per node that get an address.
    pub vms_per_node: u32,
}

impl Default for NetworkRequest {
    fn default() -> Self {
        NetworkRequest {
            vlan: Choice::Auto,
            pkey: PKeyChoice::Default,
            gateway: None,
            vms_per_node: 1,
        }
    }
}

/// A token that does not say what jobnet can do; the message names the value and the choices.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

/// The most VMs per node a request may ask for.
pub const MAX_VMS_PER_NODE: u32 = 64;

/// The changes a token asks for, key by key (`None`: not said).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Token {
    pub vlan: Option<Choice<VlanId>>,
    pub pkey: Option<PKeyChoice>,
    pub gateway: Option<String>,
    pub vms_per_node: Option<u32>,
}

impl Token {
    /// The first `jobnet` / `jobnet:...` word of `text`, if any.
    pub fn find(text: &str) -> Result<Option<Token>, RequestError> {
        for word in text.split_whitespace() {
            let word = word.trim_matches(|c| c == '\'' || c == '"' || c == ';');
            if word == "jobnet" || word == "jobnet:" {
                return Ok(Some(Token::default()));
            }
            if let Some(rest) = word.strip_prefix("jobnet:") {
                return Token::parse(rest).map(Some);
            }
        }
        Ok(None)
    }

    /// `key=value,...` after `jobnet:`.
    pub fn parse(text: &str) -> Result<Token, RequestError> {
        let mut t = Token::default();
        for item in text.split(',').filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(RequestError(format!(
                    "jobnet request `{item}` is not KEY=VALUE; write e.g. jobnet:vlan=auto,ib=yes,vms=2"
                )));
            };
            match key {
                "vlan" => t.vlan = Some(vlan(value)?),
                "ib" | "pkey" => t.pkey = Some(pkey(value)?),
                "gateway" => t.gateway = Some(gateway(value)?),
                "vms" => t.vms_per_node = Some(vms(value)?),
                _ => {
                    return Err(RequestError(format!(
                        "jobnet request key `{key}` is unknown; use vlan, ib, gateway or vms"
                    )))
                }
            }
        }
        Ok(t)
    }

    /// `base` with what the token says on top.
    pub fn over(&self, base: &NetworkRequest) -> NetworkRequest {
        NetworkRequest {
            vlan: self.vlan.unwrap_or(base.vlan),
            pkey: self.pkey.unwrap_or(base.pkey),
            gateway: self.gateway.clone().or_else(|| base.gateway.clone()),
            vms_per_node: self.vms_per_node.unwrap_or(base.vms_per_node),
        }
    }
}

/// `auto`, `none` or a VLAN id.
pub fn vlan(value: &str) -> Result<Choice<VlanId>, RequestError> {
    match value {
        "auto" => Ok(Choice::Auto),
        "none" | "no" => Ok(Choice::None),
        v => VlanId::parse(v).map(Choice::Fixed).map_err(|e| {
            RequestError(format!(
                "jobnet request vlan={v}: {e}; use auto, none or 1..4094"
            ))
        }),
    }
}

/// `yes`/`auto`, `no`/`none` or a PKey.
pub fn pkey(value: &str) -> Result<PKeyChoice, RequestError> {
    match value {
        "yes" | "auto" => Ok(PKeyChoice::Auto),
        "no" | "none" => Ok(PKeyChoice::None),
        v => PKey::parse(v).map(PKeyChoice::Fixed).map_err(|e| {
            RequestError(format!(
                "jobnet request ib={v}: {e}; use yes, no or a PKey like 0x1000"
            ))
        }),
    }
}

/// A gateway name: a strict word (checked against the topology later).
pub fn gateway(value: &str) -> Result<String, RequestError> {
    crate::base::types::check_word("gateway", value, crate::base::types::NAME_PUNCT, 64)
        .map(|()| value.to_string())
        .map_err(|e| {
            RequestError(format!(
                "jobnet request gateway={}: {}",
                value.escape_debug(),
                e.0
            ))
        })
}

/// VMs per node, 1..=[`MAX_VMS_PER_NODE`].
pub fn vms(value: &str) -> Result<u32, RequestError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_VMS_PER_NODE).contains(&n) => Ok(n),
        _ => Err(RequestError(format!(
            "jobnet request vms={}: give 1..{MAX_VMS_PER_NODE} VMs per node",
            value.escape_debug()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_live_among_other_words() {
        let t = Token::find("nightly jobnet:vlan=auto,ib=yes,gateway=gw1,vms=2 (ticket 42)")
            .unwrap()
            .unwrap();
        assert_eq!(t.vlan, Some(Choice::Auto));
        assert_eq!(t.pkey, Some(PKeyChoice::Auto));
        assert_eq!(t.gateway.as_deref(), Some("gw1"));
        assert_eq!(t.vms_per_node, Some(2));
        assert_eq!(Token::find("no token here").unwrap(), None);
        assert_eq!(
            Token::find("please jobnet").unwrap(),
            Some(Token::default())
        );
        let r = Token::find("jobnet:vlan=300,ib=no").unwrap().unwrap();
        assert_eq!(r.vlan, Some(Choice::Fixed(VlanId::new(300).unwrap())));
        assert_eq!(r.pkey, Some(PKeyChoice::None));
    }

    #[test]
    fn bad_tokens_name_the_value() {
        for (text, want) in [
            ("jobnet:vlan=5000", "vlan=5000"),
            ("jobnet:ib=maybe", "ib=maybe"),
            ("jobnet:vms=0", "vms=0"),
            ("jobnet:vms=65", "vms=65"),
            ("jobnet:gateway=gw1;rm", "gateway=gw1;rm"),
            ("jobnet:color=red", "key `color` is unknown"),
            ("jobnet:vlan", "`vlan` is not KEY=VALUE"),
        ] {
            let e = Token::find(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
