//! The site's configuration for batch-system hooks, `/etc/jobnet/jobnet.yaml` (`$JOBNET_CONFIG`):
//! where everything is (hooks get no arguments and no PATH), which jobs get a network (policy
//! first, the user's request second), what happens when a prolog fails, and how a job's VMs are
//! numbered. docs/slurm.md shows a complete file.
//!
//! ```yaml
//! topology: /etc/jobnet/topology.yaml
//! state: /var/lib/jobnet/state.db
//! log: /var/log/jobnet/hooks.log
//! service_user: slurm
//! programs: {ovs-vsctl: /usr/bin/ovs-vsctl, scontrol: /usr/bin/scontrol}
//! policy:
//!   - {partitions: [vm], network: {vlan: auto, ib: yes}}
//!   - {partitions: ["*"], requests: allow, gateways: [gw1]}
//! failure: {hold_after: 3}
//! addresses: {pool: 10.64.0.0/16, prefix: 24, dir: /var/lib/jobnet-jobs}
//! ```

use super::addresses::{AddressPlan, MacScheme, Subnets};
use super::request::{self, NetworkRequest};
use crate::base::diag::{Diagnostic, Diagnostics, Loc};
use crate::base::hint::{self, Hint, Hinted};
use crate::base::yaml::{self, Kind, Node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the site's hook configuration is unless `$JOBNET_CONFIG` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/jobnet/jobnet.yaml";

/// Where the hooks log unless `log:` says otherwise.
pub const DEFAULT_LOG: &str = "/var/log/jobnet/hooks.log";

pub use super::network::DEFAULT_ADDRESSES_DIR;

/// One rule of the policy: which jobs it covers and what they get.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Slurm partitions / PBS queues (`*`: all).
    pub partitions: Vec<String>,
    /// Users and accounts the rule is limited to (empty: anyone).
    pub users: Vec<String>,
    pub accounts: Vec<String>,
    /// Every covered job gets this network (a request may refine it).
    pub network: Option<NetworkRequest>,
    /// Covered jobs may ask with the `jobnet:` token.
    pub requests: bool,
    /// Gateways covered jobs may use.
    pub gateways: Vec<String>,
    /// A failed prolog lets the job run without a network (logged loudly) instead of failing it.
    pub fail_open: bool,
    pub loc: Loc,
}

impl Rule {
    fn covers(&self, partition: Option<&str>, user: Option<&str>, account: Option<&str>) -> bool {
        let any = |list: &[String], v: Option<&str>| {
            list.is_empty()
                || list.iter().any(|x| x == "*")
                || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        any(&self.partitions, partition) && any(&self.users, user) && any(&self.accounts, account)
    }
}

/// The hooks' configuration.
#[derive(Clone, Debug)]
pub struct Site {
    pub file: String,
    pub topology: PathBuf,
    pub state: PathBuf,
    pub credentials: PathBuf,
    pub known_hosts: PathBuf,
    pub drivers_dir: Option<PathBuf>,
    /// jobnetd's socket (`daemon:`; `off`: devices are always reached directly).
    pub daemon: Option<PathBuf>,
    pub wait: Duration,
    /// The hooks' whole budget (`deadline:`): every wait of a hook ends by it. Set it below the
    /// scheduler's hook timeout (Slurm's PrologEpilogTimeout) so jobnet, not the scheduler,
    /// decides what happens when time runs out.
    pub deadline: Option<Duration>,
    /// Where hooks log (their stdout/stderr go nowhere).
    pub log: PathBuf,
    /// The user hooks run as; files root creates in the state directory go to it.
    pub service_user: Option<String>,
    /// Absolute paths of external programs by name.
    pub programs: BTreeMap<String, PathBuf>,
    pub policy: Vec<Rule>,
    /// Failed prologs of one job (across requeues) after which it is held.
    pub hold_after: u32,
    pub addresses: Option<AddressPlan>,
    /// PBS's home (`$PBS_HOME`): the prologue reads the node list from `aux/<job id>` there.
    pub pbs_home: PathBuf,
    /// Per job, `<jobs_dir>/<job id>/network.json` tells the nodes the job's VLAN and VMs
    /// (`jobnet node attach`); a directory the nodes share with the controller. Not set: the
    /// nodes are not told (no node attach).
    pub jobs_dir: Option<PathBuf>,
    /// What the file holds that works but is probably not meant (the hooks log it).
    pub warnings: Vec<Diagnostic>,
    /// Where each top-level key was written (`jobnet config show` says where a value came
    /// from).
    pub locs: BTreeMap<String, Loc>,
}

/// A configuration that cannot be used: every problem with its `FILE:LINE:COL`.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("cannot read the jobnet configuration {path}: {source}; check $JOBNET_CONFIG (default /etc/jobnet/jobnet.yaml)")]
    Io {
        path: String,
        #[source]
        source: crate::base::limits::FileError,
    },
    #[error("{path} is invalid:\n{}", crate::base::diag::lines(.diagnostics))]
    Invalid {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
}

/// What a hook can still use of a configuration that [`Site::load`] refuses, to report that and
/// hold the job: each key only when its own value reads cleanly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Salvage {
    /// `log:` ([`DEFAULT_LOG`] when the file is a mapping without it); `None` when the file
    /// cannot be read or parsed that far, or `log:` itself is wrong.
    pub log: Option<PathBuf>,
    /// The entries of `programs:` that are right.
    pub programs: BTreeMap<String, PathBuf>,
}

/// What the policy says about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not covered, or covered without a network and nothing asked: the job is left alone.
    Untouched,
    /// The job gets this network (under the rule at `rule`); `note` says what of the job's
    /// own request was not taken.
    Network {
        request: NetworkRequest,
        fail_open: bool,
        rule: Loc,
        note: Option<String>,
    },
    /// The job asked for something the policy does not allow or that does not parse.
    Refused(String),
}

impl Site {
    /// A library error's hint in the hooks' words: the job's network request (the `jobnet:`
    /// token, the policy's `network:`, a passport's `[Network]`) and this file's keys. `None`
    /// for what a hook has no setting of its own for: it never records host keys, takes the
    /// default sessions per device and the topology's partitions.conf.
    pub fn hint(&self, h: Hint) -> Option<String> {
        let request = "the job's network request";
        let file = &self.file;
        Some(match h {
            Hint::VlanAuto => format!("VLAN `auto` in {request}"),
            Hint::VlanDefault => format!("the VLAN left out of {request}"),
            Hint::PKeyAuto => format!("PKey `auto` in {request}"),
            Hint::PKeyNone => format!("PKey `none` in {request}"),
            Hint::PKeyDefault => format!("the PKey left out of {request}"),
            Hint::StatePath => format!("`state:` in {file}"),
            Hint::Wait => format!("a longer `wait:` in {file}"),
            Hint::CredentialsPath => format!("`credentials:` in {file}"),
            Hint::DriversDir => format!("`drivers_dir:` in {file}"),
            Hint::SessionsPerDevice | Hint::TrustOnFirstUse | Hint::PartitionsConf => return None,
        })
    }

    /// An error's message with its hints in the hooks' words ([`Site::hint`]).
    pub fn explain(&self, e: &(impl std::fmt::Display + Hinted)) -> String {
        hint::worded(&e.to_string(), &e.hints(), |h| self.hint(h))
    }

    /// Reads the configuration file.
    pub fn load(path: &Path) -> Result<Site, SiteError> {
        let text = crate::base::limits::read_text(path, crate::base::limits::PROFILE).map_err(
            |source| SiteError::Io {
                path: path.display().to_string(),
                source,
            },
        )?;
        Site::parse(&text, &path.display().to_string())
    }

    /// Reads the configuration for commands run by hand (`plan`, `up`, `down`, `recover`,
    /// `status`, `topology`): they use only its common part (state, credentials, known_hosts,
    /// drivers_dir, daemon, service_user, programs, wait, topology), so an error in the hooks' part
    /// (policy, failure, addresses, log, pbs_home, jobs_dir) is returned as a warning, not a
    /// refusal: an emergency `down` never fails on a typo in a policy rule.
    pub fn load_common(path: &Path) -> Result<(Site, Vec<Diagnostic>), SiteError> {
        let file = path.display().to_string();
        let text = crate::base::limits::read_text(path, crate::base::limits::PROFILE).map_err(
            |source| SiteError::Io {
                path: file.clone(),
                source,
            },
        )?;
        let (mut d, root) = yaml::parse_document(&text, &file);
        if d.has_errors() {
            return Err(SiteError::Invalid {
                path: file,
                diagnostics: d.sorted(),
            });
        }
        let full = Reader { d: &mut d }.site(root.as_ref(), &file);
        if !d.has_errors() {
            return Ok((full, Vec::new()));
        }
        let hooks_only = |k: &Node| k.as_str().is_some_and(|n| HOOK_KEYS.contains(&n));
        let common_root = root.map(|mut r| {
            if let Kind::Map(pairs) = &mut r.kind {
                pairs.retain(|(k, _)| !hooks_only(k));
            }
            r
        });
        let mut dc = Diagnostics::new(file.clone());
        let common = Reader { d: &mut dc }.site(common_root.as_ref(), &file);
        if dc.has_errors() {
            return Err(SiteError::Invalid {
                path: file,
                diagnostics: dc.sorted(),
            });
        }
        let warnings = d
            .sorted()
            .into_iter()
            .map(|mut x| {
                x.severity = crate::base::diag::Severity::Warning;
                x.message = format!(
                    "{} (only the hooks use this part; this command goes on)",
                    x.message
                );
                x
            })
            .collect();
        Ok((common, warnings))
    }

    /// What a hook can use of a file that [`Site::load`] refused (see [`Salvage`]).
    pub fn salvage(path: &Path) -> Salvage {
        let file = path.display().to_string();
        let Ok(text) = crate::base::limits::read_text(path, crate::base::limits::PROFILE) else {
            return Salvage::default();
        };
        let (_, root) = yaml::parse_document(&text, &file);
        let Some(pairs) = root.as_ref().and_then(Node::pairs) else {
            return Salvage::default();
        };
        let mut d = Diagnostics::new(file.clone());
        let log = match yaml::get(pairs, "log") {
            None => Some(PathBuf::from(DEFAULT_LOG)),
            Some(n) => Reader { d: &mut d }.path(Some(n)),
        };
        let mut d = Diagnostics::new(file);
        let programs = Reader { d: &mut d }.programs(yaml::get(pairs, "programs"));
        Salvage { log, programs }
    }

    /// Parses the configuration text (`file` names it in messages).
    pub fn parse(text: &str, file: &str) -> Result<Site, SiteError> {
        let (mut d, root) = yaml::parse_document(text, file);
        let mut site = Reader { d: &mut d }.site(root.as_ref(), file);
        if d.has_errors() {
            return Err(SiteError::Invalid {
                path: file.to_string(),
                diagnostics: d.sorted(),
            });
        }
        site.warnings = d.sorted();
        Ok(site)
    }

    /// The policy's decision for a job in `partition` of `user`/`account`, whose texts (comment,
    /// extra) may hold a `jobnet:` token.
    pub fn decide(
        &self,
        partition: Option<&str>,
        user: Option<&str>,
        account: Option<&str>,
        texts: &[&str],
    ) -> Decision {
        let Some(rule) = self
            .policy
            .iter()
            .find(|r| r.covers(partition, user, account))
        else {
            return Decision::Untouched;
        };
        let mut token = None;
        for t in texts {
            match request::Token::find(t) {
                Ok(Some(tok)) => {
                    token = Some(tok);
                    break;
                }
                Ok(None) => {}
                Err(e) => return Decision::Refused(e.to_string()),
            }
        }
        let where_ = partition.unwrap_or("-");
        let mut note = None;
        let request = match (&rule.network, token) {
            (None, None) => return Decision::Untouched,
            (Some(n), None) => n.clone(),
            (base, Some(tok)) if rule.requests => tok.over(&base.clone().unwrap_or_default()),
            // The site's network stands; the job's own wishes are not taken (and it is said).
            (Some(n), Some(_)) => {
                note = Some(format!(
                    "the job's jobnet: request is ignored: jobs in partition {where_} get the site's network and may not ask (policy rule at {}:{})",
                    self.file, rule.loc
                ));
                n.clone()
            }
            (None, Some(_)) => {
                return Decision::Refused(format!(
                    "jobs in partition {where_} may not ask for a network (policy rule at {}:{}); remove the jobnet: token or ask the administrators",
                    self.file, rule.loc
                ))
            }
        };
        if let Some(g) = &request.gateway {
            if !rule.gateways.iter().any(|x| x == g || x == "*") {
                return Decision::Refused(format!(
                    "gateway {g} is not allowed for jobs in partition {where_} (policy rule at {}:{}: gateways {})",
                    self.file,
                    rule.loc,
                    if rule.gateways.is_empty() { "none".to_string() } else { rule.gateways.join(", ") }
                ));
            }
        }
        Decision::Network {
            request,
            fail_open: rule.fail_open,
            rule: rule.loc,
            note,
        }
    }
}

/// The keys only the batch-system hooks use.
const HOOK_KEYS: &[&str] = &[
    "policy",
    "failure",
    "addresses",
    "log",
    "pbs_home",
    "jobs_dir",
    "deadline",
];

const TOP_KEYS: &[&str] = &[
    "deadline",
    "topology",
    "state",
    "credentials",
    "known_hosts",
    "drivers_dir",
    "daemon",
    "wait",
    "log",
    "service_user",
    "programs",
    "policy",
    "failure",
    "addresses",
    "pbs_home",
    "jobs_dir",
];
const RULE_KEYS: &[&str] = &[
    "partitions",
    "users",
    "accounts",
    "network",
    "requests",
    "gateways",
    "fail_open",
];
const ADDRESS_KEYS: &[&str] = &[
    "pool", "prefix", "template", "first", "gateway", "dns", "mac", "names", "dir",
];

struct Reader<'a> {
    d: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn site(&mut self, root: Option<&Node>, file: &str) -> Site {
        let empty = Node {
            loc: Loc { line: 1, col: 1 },
            kind: Kind::Map(Vec::new()),
        };
        let root = root.filter(|r| !r.is_null()).unwrap_or(&empty);
        let pairs = yaml::mapping(
            self.d,
            root,
            "the jobnet configuration",
            "write `key: value` lines",
        )
        .unwrap_or(&[]);
        self.unknown(pairs, TOP_KEYS, "the jobnet configuration");
        let path = |r: &mut Self, key: &str, default: &str| {
            r.path(yaml::get(pairs, key))
                .unwrap_or_else(|| PathBuf::from(default))
        };
        let jobs_dir = self.path(yaml::get(pairs, "jobs_dir"));
        let files = jobs_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ADDRESSES_DIR));
        let wait = Duration::from_secs(
            self.number(yaml::get(pairs, "wait"), "wait", 1, 3600)
                .unwrap_or(60),
        );
        let deadline_node = yaml::get(pairs, "deadline");
        let deadline = self
            .number(deadline_node, "deadline", 1, 86400)
            .map(Duration::from_secs);
        if let (Some(d), Some(n)) = (deadline, deadline_node) {
            if d <= wait {
                self.d.warning(
                    n.loc,
                    format!(
                        "`deadline: {}` is not longer than `wait: {}`: one wait can use the hook's whole budget",
                        d.as_secs(),
                        wait.as_secs()
                    ),
                    "make wait a fraction of deadline (e.g. wait: 30, deadline: 100 for PrologEpilogTimeout=120)",
                );
            }
        }
        Site {
            file: file.to_string(),
            deadline,
            topology: path(self, "topology", "/etc/jobnet/topology.yaml"),
            state: path(self, "state", "/var/lib/jobnet/state.db"),
            credentials: path(self, "credentials", "/etc/jobnet/credentials.yaml"),
            known_hosts: path(self, "known_hosts", "/etc/jobnet/known_hosts"),
            drivers_dir: self.path(yaml::get(pairs, "drivers_dir")),
            daemon: match yaml::get(pairs, "daemon") {
                None => Some(PathBuf::from(crate::context::DAEMON_SOCKET)),
                Some(n) if n.as_str() == Some("off") => None,
                Some(n) => self.path(Some(n)),
            },
            wait,
            log: path(self, "log", DEFAULT_LOG),
            service_user: yaml::get(pairs, "service_user")
                .and_then(|n| self.word(n, "service_user")),
            programs: self.programs(yaml::get(pairs, "programs")),
            policy: self.policy(yaml::get(pairs, "policy")),
            hold_after: self.failure(yaml::get(pairs, "failure")),
            addresses: yaml::get(pairs, "addresses").and_then(|n| self.addresses(n, &files)),
            pbs_home: path(self, "pbs_home", "/var/spool/pbs"),
            jobs_dir,
            warnings: Vec::new(),
            locs: pairs
                .iter()
                .filter_map(|(k, _)| k.as_str().map(|n| (n.to_string(), k.loc)))
                .collect(),
        }
    }

    fn unknown(&mut self, pairs: &[(Node, Node)], allowed: &[&str], what: &str) {
        yaml::report_unknown(self.d, pairs, allowed, what, &|_, _| false);
    }

    fn scalar<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n str> {
        match n.as_str() {
            Some(s) if !n.is_null() => Some(s),
            _ => {
                self.d.error(
                    n.loc,
                    format!("`{what}` must be a single value, found {}", n.kind_name()),
                    "write one value",
                );
                None
            }
        }
    }

    fn path(&mut self, n: Option<&Node>) -> Option<PathBuf> {
        let n = n?;
        let text = self.scalar(n, "path")?;
        if !text.starts_with('/') || !crate::base::types::safe_path(text) {
            self.d.error(
                n.loc,
                format!(
                    "`{}` is not an absolute path of letters, digits and /._-",
                    text.escape_debug()
                ),
                "hooks run without a working directory: give the absolute path",
            );
            return None;
        }
        Some(PathBuf::from(text))
    }

    fn word(&mut self, n: &Node, what: &str) -> Option<String> {
        let text = self.scalar(n, what)?;
        match crate::base::types::check_word(what, text, crate::base::types::NAME_PUNCT, 64) {
            Ok(()) => Some(text.to_string()),
            Err(e) => {
                self.d
                    .error(n.loc, e.0, "use letters, digits, `-`, `_` and `.`");
                None
            }
        }
    }

    fn number(&mut self, n: Option<&Node>, what: &str, min: u64, max: u64) -> Option<u64> {
        let n = n?;
        let text = self.scalar(n, what)?;
        match text.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.d.error(
                    n.loc,
                    format!(
                        "`{what}` {} is not a number in {min}..{max}",
                        text.escape_debug()
                    ),
                    "",
                );
                None
            }
        }
    }

    fn words(&mut self, n: Option<&Node>, what: &str) -> Vec<String> {
        let Some(n) = n else { return Vec::new() };
        match &n.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| match i.as_str() {
                    Some("*") => Some("*".to_string()),
                    _ => self.word(i, what),
                })
                .collect(),
            _ => {
                self.d.error(
                    n.loc,
                    format!("`{what}` must be a list, found {}", n.kind_name()),
                    "write e.g. [vm, gpu]",
                );
                Vec::new()
            }
        }
    }

    fn programs(&mut self, n: Option<&Node>) -> BTreeMap<String, PathBuf> {
        let Some(n) = n else { return BTreeMap::new() };
        let Some(pairs) = yaml::mapping(
            self.d,
            n,
            "`programs`",
            "write `name: /absolute/path` lines",
        ) else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in pairs {
            if let (Some(name), Some(path)) = (self.word(k, "program name"), self.path(Some(v))) {
                out.insert(name, path);
            }
        }
        out
    }

    fn policy(&mut self, n: Option<&Node>) -> Vec<Rule> {
        let Some(n) = n else { return Vec::new() };
        let Kind::Seq(items) = &n.kind else {
            self.d.error(
                n.loc,
                format!("`policy` must be a list of rules, found {}", n.kind_name()),
                "write `- {partitions: [vm], network: {vlan: auto}}` lines",
            );
            return Vec::new();
        };
        items.iter().filter_map(|i| self.rule(i)).collect()
    }

    fn rule(&mut self, n: &Node) -> Option<Rule> {
        let pairs = yaml::mapping(
            self.d,
            n,
            "a policy rule",
            "write e.g. {partitions: [vm], network: {vlan: auto}}",
        )?;
        self.unknown(pairs, RULE_KEYS, "a policy rule");
        let requests = match yaml::get(pairs, "requests").and_then(|v| self.scalar(v, "requests")) {
            None => false,
            Some("allow") => true,
            Some("deny") => false,
            Some(other) => {
                let loc = yaml::get(pairs, "requests").map_or(n.loc, |v| v.loc);
                self.d.error(
                    loc,
                    format!(
                        "`requests: {}` is neither allow nor deny",
                        other.escape_debug()
                    ),
                    "",
                );
                false
            }
        };
        let fail_open =
            match yaml::get(pairs, "fail_open").and_then(|v| self.scalar(v, "fail_open")) {
                None | Some("false") | Some("no") => false,
                Some("true") | Some("yes") => true,
                Some(other) => {
                    let loc = yaml::get(pairs, "fail_open").map_or(n.loc, |v| v.loc);
                    self.d.error(
                        loc,
                        format!(
                            "`fail_open: {}` is neither true nor false",
                            other.escape_debug()
                        ),
                        "",
                    );
                    false
                }
            };
        Some(Rule {
            partitions: self.words(yaml::get(pairs, "partitions"), "partitions"),
            users: self.words(yaml::get(pairs, "users"), "users"),
            accounts: self.words(yaml::get(pairs, "accounts"), "accounts"),
            network: yaml::get(pairs, "network").and_then(|v| self.network(v)),
            requests,
            gateways: self.words(yaml::get(pairs, "gateways"), "gateways"),
            fail_open,
            loc: n.loc,
        })
    }

    fn network(&mut self, n: &Node) -> Option<NetworkRequest> {
        let pairs = yaml::mapping(
            self.d,
            n,
            "`network`",
            "write e.g. {vlan: auto, ib: yes, vms: 2}",
        )?;
        self.unknown(pairs, &["vlan", "ib", "gateway", "vms"], "`network`");
        let mut r = NetworkRequest::default();
        for (k, v) in pairs {
            let (Some(key), Some(value)) = (k.as_str(), self.scalar(v, "network value")) else {
                continue;
            };
            let parsed = match key {
                "vlan" => request::vlan(value).map(|x| r.vlan = x),
                "ib" => request::pkey(value).map(|x| r.pkey = x),
                "gateway" => request::gateway(value).map(|x| r.gateway = Some(x)),
                "vms" => request::vms(value).map(|x| r.vms_per_node = x),
                _ => Ok(()),
            };
            if let Err(e) = parsed {
                self.d.error(v.loc, e.0.replace("jobnet request ", ""), "");
            }
        }
        Some(r)
    }

    fn failure(&mut self, n: Option<&Node>) -> u32 {
        let Some(n) = n else { return 3 };
        let Some(pairs) = yaml::mapping(self.d, n, "`failure`", "write {hold_after: 3}") else {
            return 3;
        };
        self.unknown(pairs, &["hold_after"], "`failure`");
        self.number(yaml::get(pairs, "hold_after"), "hold_after", 1, 100)
            .unwrap_or(3) as u32
    }

    fn addresses(&mut self, n: &Node, jobs_dir: &Path) -> Option<AddressPlan> {
        let pairs = yaml::mapping(
            self.d,
            n,
            "`addresses`",
            "write e.g. {pool: 10.64.0.0/16, prefix: 24}",
        )?;
        self.unknown(pairs, ADDRESS_KEYS, "`addresses`");
        let subnets = self.subnets(n, pairs)?;
        let first = self
            .number(yaml::get(pairs, "first"), "first", 1, 65534)
            .unwrap_or(2) as u32;
        let gateway = self.gateway_host(n, pairs);
        let dns = self.dns(yaml::get(pairs, "dns"));
        let mac = self.mac_scheme(n, pairs);
        let names = self.names(n, pairs);
        Some(AddressPlan {
            subnets,
            first,
            gateway,
            dns,
            mac,
            names,
            dir: self
                .path(yaml::get(pairs, "dir"))
                .unwrap_or_else(|| jobs_dir.to_path_buf()),
        })
    }

    /// Reads the subnet source of `addresses`: exactly one of `pool` (with `prefix`) or `template`.
    fn subnets(&mut self, n: &Node, pairs: &[(Node, Node)]) -> Option<Subnets> {
        match (yaml::get(pairs, "pool"), yaml::get(pairs, "template")) {
            (Some(p), None) => self.pool(p, pairs),
            (None, Some(t)) => self.template(t),
            _ => {
                self.d.error(n.loc, "`addresses` needs either `pool` (with `prefix`) or `template`", "write e.g. {pool: 10.64.0.0/16, prefix: 24} or {template: \"192.168.{vlan}.0/24\"}");
                None
            }
        }
    }

    /// Reads `pool` and `prefix` into a pool of subnets, refusing a prefix wider than the pool.
    fn pool(&mut self, p: &Node, pairs: &[(Node, Node)]) -> Option<Subnets> {
        let text = self.scalar(p, "pool")?;
        let pool: ipnetwork::Ipv4Network = match text.parse() {
            Ok(v) => v,
            Err(e) => {
                self.d.error(
                    p.loc,
                    format!(
                        "`pool: {}` is not an IPv4 network: {e}",
                        text.escape_debug()
                    ),
                    "write e.g. 10.64.0.0/16",
                );
                return None;
            }
        };
        let prefix = self
            .number(yaml::get(pairs, "prefix"), "prefix", 8, 30)
            .unwrap_or(24) as u8;
        if prefix < pool.prefix() {
            self.d.error(
                p.loc,
                format!("`prefix: {prefix}` is wider than the pool {pool}"),
                "give a prefix at least as long as the pool's",
            );
            return None;
        }
        Some(Subnets::Pool { pool, prefix })
    }

    /// Reads `template`, which must hold `{vlan}` and become an IPv4 network once it is filled in.
    fn template(&mut self, t: &Node) -> Option<Subnets> {
        let text = self.scalar(t, "template")?;
        if !text.contains("{vlan}") || text.parse::<ipnetwork::Ipv4Network>().is_ok() {
            self.d.error(
                t.loc,
                format!("`template: {}` has no {{vlan}}", text.escape_debug()),
                "write e.g. \"192.168.{vlan}.0/24\"",
            );
            return None;
        }
        if text
            .replace("{vlan}", "1")
            .parse::<ipnetwork::Ipv4Network>()
            .is_err()
        {
            self.d.error(
                t.loc,
                format!(
                    "`template: {}` is not an IPv4 network with {{vlan}} in it",
                    text.escape_debug()
                ),
                "write e.g. \"192.168.{vlan}.0/24\"",
            );
            return None;
        }
        Some(Subnets::Template(text.to_string()))
    }

    /// Reads the gateway's host number in each subnet; absent or `none` means no gateway.
    fn gateway_host(&mut self, n: &Node, pairs: &[(Node, Node)]) -> Option<u32> {
        match yaml::get(pairs, "gateway").and_then(|v| self.scalar(v, "gateway")) {
            None | Some("none") => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    let loc = yaml::get(pairs, "gateway").map_or(n.loc, |x| x.loc);
                    self.d.error(
                        loc,
                        format!("`gateway: {}` is not a host number", v.escape_debug()),
                        "write the gateway's host number in the subnet, e.g. 1, or none",
                    );
                    None
                }
            },
        }
    }

    /// Reads the `dns` list of IPv4 addresses, skipping (and reporting) the ones that are not.
    fn dns(&mut self, n: Option<&Node>) -> Vec<std::net::Ipv4Addr> {
        match n {
            None => Vec::new(),
            Some(v) => match &v.kind {
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|i| {
                        let t = self.scalar(i, "dns")?;
                        t.parse()
                            .map_err(|_| {
                                self.d.error(
                                    i.loc,
                                    format!("`{}` is not an IPv4 address", t.escape_debug()),
                                    "",
                                )
                            })
                            .ok()
                    })
                    .collect(),
                _ => {
                    self.d.error(
                        v.loc,
                        "`dns` must be a list of addresses",
                        "write e.g. [10.0.0.53]",
                    );
                    Vec::new()
                }
            },
        }
    }

    /// Reads `mac`: `hashed` (the default) or `encoded`.
    fn mac_scheme(&mut self, n: &Node, pairs: &[(Node, Node)]) -> MacScheme {
        match yaml::get(pairs, "mac").and_then(|v| self.scalar(v, "mac")) {
            None | Some("hashed") => MacScheme::Hashed,
            Some("encoded") => MacScheme::Encoded,
            Some(other) => {
                let loc = yaml::get(pairs, "mac").map_or(n.loc, |x| x.loc);
                self.d.error(
                    loc,
                    format!(
                        "`mac: {}` is neither hashed nor encoded",
                        other.escape_debug()
                    ),
                    "",
                );
                MacScheme::Hashed
            }
        }
    }

    /// Reads the `names` pattern for guests, which must hold `{n}`; defaults to `vm{n}`.
    fn names(&mut self, n: &Node, pairs: &[(Node, Node)]) -> String {
        match yaml::get(pairs, "names").and_then(|v| self.scalar(v, "names")) {
            None => "vm{n}".to_string(),
            Some(t)
                if t.contains("{n}")
                    && crate::base::types::check_word(
                        "names",
                        &t.replace("{n}", "1"),
                        crate::base::types::NAME_PUNCT,
                        48,
                    )
                    .is_ok() =>
            {
                t.to_string()
            }
            Some(t) => {
                let loc = yaml::get(pairs, "names").map_or(n.loc, |x| x.loc);
                self.d.error(
                    loc,
                    format!(
                        "`names: {}` must hold {{n}} and otherwise letters, digits, `-_.`",
                        t.escape_debug()
                    ),
                    "write e.g. \"vs{n}\"",
                );
                "vm{n}".to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Choice, PKeyChoice};

    const SITE: &str = "policy:\n  - {partitions: [vm], network: {vlan: auto, ib: yes}}\n  - {partitions: [\"*\"], requests: allow, gateways: [gw1]}\n";

    #[test]
    fn policy_first_then_the_request() {
        let s = Site::parse(SITE, "jobnet.yaml").unwrap();
        let Decision::Network { request, .. } = s.decide(Some("vm"), None, None, &[]) else {
            panic!()
        };
        assert_eq!(request.pkey, PKeyChoice::Auto);
        assert_eq!(
            s.decide(Some("batch"), None, None, &["no token"]),
            Decision::Untouched
        );
        let Decision::Network { request, .. } =
            s.decide(Some("batch"), None, None, &["x jobnet:vms=2,gateway=gw1"])
        else {
            panic!()
        };
        assert_eq!((request.vms_per_node, request.vlan), (2, Choice::Auto));
        assert!(matches!(
            s.decide(Some("batch"), None, None, &["jobnet:gateway=gw9"]),
            Decision::Refused(m) if m.contains("gateway gw9 is not allowed")
        ));
        // A rule without `requests: allow` keeps its network and says the token was not taken.
        assert!(matches!(
            s.decide(Some("vm"), None, None, &["jobnet:vms=3"]),
            Decision::Network { request, note: Some(n), .. } if request.vms_per_node == 1 && n.contains("may not ask")
        ));
        let deny = Site::parse("policy:\n  - {partitions: [\"*\"]}\n", "j.yaml").unwrap();
        assert!(matches!(
            deny.decide(Some("x"), None, None, &["jobnet"]),
            Decision::Refused(m) if m.contains("may not ask")
        ));
    }

    #[test]
    fn address_files_are_not_under_the_private_state_directory_by_default() {
        let s = Site::parse("addresses: {pool: 10.64.0.0/16, prefix: 24}\n", "j.yaml").unwrap();
        let dir = s.addresses.unwrap().dir;
        assert_eq!(dir, PathBuf::from(DEFAULT_ADDRESSES_DIR));
        assert!(!dir.starts_with(s.state.parent().unwrap()), "{dir:?}");
    }

    #[test]
    fn a_refused_file_still_names_its_log_and_programs() {
        let dir = std::env::temp_dir().join(format!("jobnet-salvage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("jobnet.yaml");
        let salvage = |text: &str| {
            std::fs::write(&f, text).unwrap();
            assert!(Site::load(&f).is_err(), "{text}");
            Site::salvage(&f)
        };
        let s = salvage(
            "log: /l/hooks.log\nprograms: {scontrol: /opt/bin/scontrol, x: rel}\npolcy: []\n",
        );
        assert_eq!(s.log, Some(PathBuf::from("/l/hooks.log")));
        assert_eq!(
            s.programs.into_iter().collect::<Vec<_>>(),
            [("scontrol".to_string(), PathBuf::from("/opt/bin/scontrol"))]
        );
        assert_eq!(salvage("polcy: []\n").log, Some(PathBuf::from(DEFAULT_LOG)));
        assert_eq!(salvage("log: rel.log\n").log, None);
        assert_eq!(salvage("- a list\n"), Salvage::default());
        assert_eq!(Site::salvage(&dir.join("missing.yaml")), Salvage::default());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn mistakes_are_located() {
        let e = Site::parse(
            "policy:\n  - {partition: [vm]}\nstate: relative.db\n",
            "j.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("j.yaml:2:6: error: unknown key `partition` in a policy rule, did you mean `partitions`?"), "{e}");
        assert!(
            e.contains("j.yaml:3:8: error: `relative.db` is not an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn a_deadline_not_longer_than_wait_is_a_warning_and_policy_typos_spare_other_commands() {
        let site = Site::parse("wait: 60\ndeadline: 50\n", "j.yaml").unwrap();
        assert_eq!(site.deadline, Some(Duration::from_secs(50)));
        let w: Vec<String> = site.warnings.iter().map(|d| d.to_string()).collect();
        assert!(
            w.iter()
                .any(|x| x.contains("j.yaml:2:11") && x.contains("not longer than `wait: 60`")),
            "{w:?}"
        );
        let ok = Site::parse("wait: 30\ndeadline: 100\n", "j.yaml").unwrap();
        assert!(ok.warnings.is_empty());
        // A typo in a policy rule: the hooks refuse the file, the other commands warn.
        let dir = std::env::temp_dir().join(format!("jobnet-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("jobnet.yaml");
        std::fs::write(
            &f,
            "state: /s/state.db\npolicy:\n  - {partitions: [p], fail_opn: true}\n",
        )
        .unwrap();
        assert!(Site::load(&f).is_err());
        let (common, warnings) = Site::load_common(&f).unwrap();
        assert_eq!(common.state, PathBuf::from("/s/state.db"));
        assert!(
            warnings.iter().any(|d| d.message.contains("fail_opn")),
            "{warnings:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
