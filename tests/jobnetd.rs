//! jobnetd: jobs reach their devices through its warm sessions with the same results as without
//! it. In-process (the executor through a jobnetd serving the test kit's simulated switches):
//! a burst logs in once per device session, a fault at every position still rolls everything
//! back, a device's refusal reads the same, a warm session the device dropped is replaced by a
//! new login, a session dropped in the middle of a job fails only that job. As processes
//! (`jobnetd` and `jobnet` binaries, switches over real SSH): warm logins, a `jobnet` killed
//! with -9 (its session is never lent again), jobnetd killed with -9 mid-`up` (the job unwinds
//! directly), a graceful stop mid-`up` (the job finishes), the socket's mode.

mod common;

use jobnet::apply::{self, ApplyError, Env, Interrupt, UpInputs};
use jobnet::base::types::{JobId, VlanId};
use jobnet::daemon::{Daemon, Devices, ServeOptions};
use jobnet::drivers::cli::CliDriver;
use jobnet::drivers::merge::{self, Outcome, Submission};
use jobnet::drivers::transport::daemon::{DaemonConnector, LoginOptions};
use jobnet::drivers::transport::{Connector, DeviceError, Session, Target};
use jobnet::drivers::{DriverSet, Profile};
use jobnet::plan::Op;
use jobnet::plan::{Choice, JobRequest, PKeyChoice};
use jobnet::state::sqlite::SqliteStore as Store;
use jobnet::state::{JobState, StateStore};
use jobnet::testkit::failpoint::Failpoints;
use jobnet::testkit::sim::{SimFabric, SimPort, SimState, SitePorts};
use jobnet::topology::{self, SwitchGraph, Topology};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static NO_SIGNAL: Interrupt = Interrupt::new();
const NODES: &str = "cn[001-004],cn[030-031],cn041";

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("jobnetd")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The simulated switches as a device would behave behind jobnetd: logins counted per device,
/// every session dropped at once when `drop_all` is called (a device that restarts or clears
/// its VTY lines), or the connection dropped when the next line containing a text arrives
/// (`drop_at`).
#[derive(Clone, Default)]
struct Devices2 {
    fabric: SimFabric,
    logins: Arc<Mutex<BTreeMap<String, usize>>>,
    generation: Arc<AtomicU64>,
    /// The next line containing this text drops its connection.
    drop_at: Arc<Mutex<Option<String>>>,
}

impl Devices2 {
    fn logins(&self) -> usize {
        self.logins.lock().unwrap().values().sum()
    }

    fn drop_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

struct Flaky {
    inner: Box<dyn Session>,
    device: String,
    born: u64,
    devices: Devices2,
}

impl Flaky {
    fn gone(&self, command: &str) -> Option<DeviceError> {
        (self.devices.generation.load(Ordering::SeqCst) != self.born).then(|| DeviceError::Lost {
            device: self.device.clone(),
            command: command.into(),
            reason: "connection reset by peer".into(),
        })
    }
}

impl Session for Flaky {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        if let Some(e) = self.gone(line) {
            return Err(e);
        }
        let hit = {
            let mut at = self.devices.drop_at.lock().unwrap();
            let hit = at.as_deref().is_some_and(|t| line.contains(t));
            if hit {
                *at = None;
            }
            hit
        };
        if hit {
            // This connection drops before answering (the device may or may not have acted).
            self.born = u64::MAX;
            return Err(DeviceError::Lost {
                device: self.device.clone(),
                command: line.into(),
                reason: "connection reset by peer".into(),
            });
        }
        self.inner.run(line)
    }

    fn probe(&mut self) -> Result<(), DeviceError> {
        match self.gone("<keep-alive>") {
            Some(e) => Err(e),
            None => self.inner.probe(),
        }
    }
}

impl Connector for Devices2 {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        let inner = self.fabric.connect(target, profile)?;
        *self
            .logins
            .lock()
            .unwrap()
            .entry(target.name.clone())
            .or_default() += 1;
        Ok(Box::new(Flaky {
            inner,
            device: target.name.clone(),
            born: self.generation.load(Ordering::SeqCst),
            devices: self.clone(),
        }))
    }

    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        self.fabric.install_file(target, path, text)
    }
}

/// A connector that must never be used: every device goes through jobnetd.
struct NoDirect;

impl Connector for NoDirect {
    fn connect(&self, target: &Target, _: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        panic!("{} was reached directly, not through jobnetd", target.name)
    }
}

struct Lab {
    dir: PathBuf,
    topology: Topology,
    graph: SwitchGraph,
    drivers: DriverSet,
    devices: Devices2,
    store: Store,
    daemon: Option<Daemon>,
    via: DaemonConnector,
}

fn serve_options(dir: &Path) -> ServeOptions {
    ServeOptions {
        socket: dir.join("jobnetd.sock"),
        socket_owner: None,
        keepalive: Duration::from_secs(30),
        probe_after: Duration::from_millis(50),
        idle_max: Duration::from_secs(600),
        drain: Duration::from_secs(10),
    }
}

impl Lab {
    fn new(name: &str) -> Lab {
        let dir = scratch(name);
        let drivers = DriverSet::builtin();
        let topology = topology::load(Path::new("topology/two-tier.yaml"), &drivers)
            .unwrap()
            .topology;
        let graph = SwitchGraph::build(&topology);
        let devices = Devices2::default();
        devices
            .fabric
            .build(&topology, &drivers, SitePorts::Prepared);
        let daemon = Daemon::start(
            serve_options(&dir),
            Devices::Given(Arc::new(devices.clone())),
        )
        .unwrap();
        let via = DaemonConnector::new(
            dir.join("jobnetd.sock"),
            LoginOptions {
                credentials: dir.join("credentials.yaml"),
                known_hosts: dir.join("known_hosts"),
                trust_on_first_use: false,
                connect_timeout_ms: 5_000,
                command_timeout_ms: 5_000,
                sessions_per_device: 4,
            },
            Box::new(NoDirect),
            Duration::from_secs(20),
        );
        Lab {
            store: Store::open(&dir.join("state.db")).unwrap(),
            dir,
            topology,
            graph,
            drivers,
            devices,
            daemon: Some(daemon),
            via,
        }
    }

    fn env<'a>(&'a self, fp: &'a Failpoints) -> Env<'a> {
        Env {
            store: &self.store,
            connector: &self.via,
            drivers: &self.drivers,
            faults: fp,
            sessions_per_device: 4,
            wait: Duration::from_secs(20),
            save: false,
            interrupt: &NO_SIGNAL,
            retarget: BTreeMap::new(),
            progress: &apply::Silent,
        }
    }

    fn up(&self, fp: &Failpoints, job: &str, nodes: &str) -> Result<apply::UpReport, ApplyError> {
        let req = JobRequest {
            job: JobId::parse(job).unwrap(),
            nodes: jobnet::base::hostlist::expand(nodes).unwrap(),
            vlan: Choice::Auto,
            pkey: PKeyChoice::None,
            gateway: None,
            origin: Default::default(),
        };
        apply::up(
            &self.env(fp),
            &UpInputs {
                topology: &self.topology,
                graph: &self.graph,
                topology_path: "lab.yaml",
                partitions_conf: None,
            },
            &req,
        )
    }

    fn down(&self, job: &str) {
        apply::down(
            &self.env(&Failpoints::default()),
            &JobId::parse(job).unwrap(),
            false,
        )
        .unwrap();
    }

    fn snapshot(&self) -> BTreeMap<String, SimState> {
        self.devices.fabric.snapshot()
    }

    fn lent(&self) -> usize {
        self.daemon.as_ref().unwrap().lent()
    }

    fn metric(&self, name: &str) -> u64 {
        metric(&self.daemon.as_ref().unwrap().metrics(), name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

/// Sixteen jobs at once on the shipped two-tier example: every one up with its own VLAN; the
/// devices saw at most one login per session slot (4) each, not one per job and device; every
/// session came back; all down again leaves every switch as it was.
#[test]
fn a_burst_through_jobnetd_logs_in_once_per_device_session() {
    let lab = Lab::new("burst");
    let baseline = lab.snapshot();
    let none = Failpoints::default();
    let jobs: Vec<String> = (1..=16).map(|i| format!("b{i}")).collect();
    // Each job on one node of its own: cn001..cn016 spread over the leaves.
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let lab = &lab;
                let none = &none;
                s.spawn(move || {
                    let nodes = format!("cn{:03},cn{:03}", i + 1, 30 + i % 12);
                    lab.up(none, job, &nodes)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut vlans = std::collections::BTreeSet::new();
    let mut device_sessions = 0;
    for r in reports {
        let r = r.unwrap();
        assert!(vlans.insert(r.vlan.unwrap().get()), "one VLAN per job");
        device_sessions += r.devices.len();
    }
    let logins = lab.devices.logins.lock().unwrap().clone();
    assert!(
        logins.values().all(|&n| n <= 4),
        "at most one login per session slot and device: {logins:?}"
    );
    assert!(
        lab.devices.logins() < device_sessions,
        "{} logins for {device_sessions} device sessions",
        lab.devices.logins()
    );
    assert_eq!(lab.lent(), 0, "every session came back");
    assert!(lab.metric("jobnetd_sessions_reused_total") > 0);
    for job in &jobs {
        lab.down(job);
    }
    assert_eq!(lab.snapshot(), baseline);
    assert!(lab.store.allocations().unwrap().is_empty());
}

/// The executor's fault at every position (before and after every operation), through
/// jobnetd: every `up` rolls back completely, and no session stays lent.
#[test]
fn a_fault_at_every_position_rolls_everything_back_through_jobnetd() {
    let lab = Lab::new("every-position");
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    let total: usize = lab
        .up(&none, "1", NODES)
        .unwrap()
        .devices
        .iter()
        .map(|d| d.operations)
        .sum();
    lab.down("1");
    assert!(total >= 12, "a multi-device plan ({total} operations)");
    for k in 1..=total {
        for point in ["intent", "done"] {
            let fp = Failpoints::parse(&format!("{point}:{k}:error")).unwrap();
            let job = format!("f{point}{k}");
            match lab.up(&fp, &job, NODES) {
                Err(ApplyError::RolledBack { failures, .. }) => {
                    assert!(format!("{failures:?}").contains("injected"))
                }
                other => panic!("{point}:{k}: expected a rollback, got {other:?}"),
            }
            assert_eq!(lab.snapshot(), baseline, "fault {point}:{k} left changes");
            assert_eq!(
                lab.store
                    .job(&JobId::parse(&job).unwrap())
                    .unwrap()
                    .unwrap()
                    .state,
                JobState::Down
            );
            assert_eq!(lab.lent(), 0, "fault {point}:{k} left a session lent");
        }
    }
    assert!(lab.store.allocations().unwrap().is_empty());
    // A session left in configuration mode by a failure is closed, never lent again; the
    // others served warm: far fewer logins than the jobs' device sessions (each of the
    // 2 × {total} failed `up`s used at least 4, its rollback more).
    assert!(
        lab.devices.logins() < 2 * total * 4 / 2,
        "{} logins",
        lab.devices.logins()
    );
}

/// A device's refusal reaches the job through jobnetd word for word, the job rolls back with
/// exit code 4, and the refused session is not lent again.
#[test]
fn a_device_refusal_reads_the_same_through_jobnetd() {
    let lab = Lab::new("refusal");
    let baseline = lab.snapshot();
    lab.devices.fabric.with_faults("leaf3", |f| {
        f.reject_matching = Some("allowed vlan add".into())
    });
    let e = lab.up(&Failpoints::default(), "7", NODES).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(
            "leaf3 refused `switchport trunk allowed vlan add 1000`: % Invalid input detected"
        ),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 4);
    assert_eq!(lab.snapshot(), baseline);
    assert_eq!(lab.lent(), 0);
}

/// A device drops every session while they sit warm (a restart, `clear line`): the next job's
/// sessions are probed, found gone and replaced by new logins; the job comes up.
#[test]
fn a_warm_session_the_device_dropped_is_replaced_by_a_new_login() {
    let lab = Lab::new("dropped-warm");
    let none = Failpoints::default();
    lab.up(&none, "1", NODES).unwrap();
    lab.down("1");
    let before = lab.devices.logins();
    lab.devices.drop_all();
    std::thread::sleep(Duration::from_millis(120));
    let r = lab.up(&none, "2", NODES).unwrap();
    assert_eq!(r.devices.len(), 4);
    assert!(lab.devices.logins() > before, "new logins replaced them");
    assert!(lab.metric("jobnetd_sessions_dead_total") >= 4);
    lab.down("2");
}

/// The connection drops in the middle of a job's stream: that job fails with the device's
/// words and unwinds (over a new session), the next job comes up.
#[test]
fn a_session_dropped_mid_stream_fails_only_that_job() {
    let lab = Lab::new("dropped-mid");
    let none = Failpoints::default();
    let baseline = lab.snapshot();
    lab.up(&none, "1", NODES).unwrap();
    lab.down("1");
    *lab.devices.drop_at.lock().unwrap() = Some("allowed vlan add".into());
    let e = lab.up(&none, "2", NODES).unwrap_err();
    assert!(e.to_string().contains("connection lost"), "{e}");
    assert_eq!(e.exit_code(), 4);
    assert_eq!(lab.snapshot(), baseline);
    assert_eq!(lab.lent(), 0);
    lab.up(&none, "3", NODES).unwrap();
    lab.down("3");
    assert_eq!(lab.snapshot(), baseline);
}

// ---- As processes: the `jobnetd` and `jobnet` binaries, switches over real SSH. ----

use jobnet::testkit::sim_server;
use std::process::{Child, Command, Stdio};

struct SshLab {
    dir: PathBuf,
    fabric: SimFabric,
    baseline: BTreeMap<String, SimState>,
    running: sim_server::Running,
    jobnetd: Option<Child>,
    _runtime: tokio::runtime::Runtime,
}

impl SshLab {
    fn new(name: &str) -> SshLab {
        let dir = scratch(&format!("ssh-{name}"));
        let drivers = DriverSet::builtin();
        let t = topology::load(Path::new("topology/two-tier.yaml"), &drivers)
            .unwrap()
            .topology;
        let fabric = SimFabric::default();
        fabric.build(&t, &drivers, SitePorts::Prepared);
        let names: Vec<String> = t.switches.iter().map(|s| s.name.clone()).collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let access = sim_server::Access {
            username: "jobnet".into(),
            password: "pw-for-tests".into(),
            authorized_keys: vec![],
            enable_password: Some("en-secret-7".into()),
        };
        let running =
            sim_server::start_fabric(runtime.handle(), &fabric, &names, &[], &access).unwrap();
        sim_server::write_lab(&dir, &t, &running, &access, &[]).unwrap();
        let mut lab = SshLab {
            dir,
            baseline: fabric.snapshot(),
            fabric,
            running,
            jobnetd: None,
            _runtime: runtime,
        };
        lab.start_jobnetd();
        lab
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("d.sock")
    }

    fn start_jobnetd(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_jobnetd"))
            .args(["--socket", self.socket().to_str().unwrap(), "--drain", "30"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.jobnetd = Some(child);
        let started = std::time::Instant::now();
        while !self.socket().exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "jobnetd did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn cmd(&self, daemon: bool, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobnet"));
        let p = |f: &str| self.dir.join(f).to_str().unwrap().to_string();
        let socket = if daemon {
            self.socket().to_str().unwrap().to_string()
        } else {
            "off".into()
        };
        c.args([
            "--state",
            &p("state.db"),
            "--credentials",
            &p("credentials.yaml"),
        ]);
        c.args(["--known-hosts", &p("known_hosts"), "--daemon", &socket]);
        c.args(args);
        c.env_remove("JOBNET_FAILPOINT");
        c
    }

    fn up_args(&self, job: &str) -> Vec<String> {
        let topo = self.dir.join("topology.yaml").to_str().unwrap().to_string();
        [
            "up",
            "--topology",
            &topo,
            "--job",
            job,
            "--nodes",
            NODES,
            "--pkey",
            "none",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn jn(&self, daemon: bool, args: &[&str]) -> (i32, String) {
        let o = self.cmd(daemon, args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn up(&self, daemon: bool, job: &str) -> (i32, String) {
        let args = self.up_args(job);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.jn(daemon, &args)
    }

    fn spawn_up(&self, job: &str) -> Child {
        let args = self.up_args(job);
        self.cmd(true, &args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn slow(&self) {
        for sw in ["leaf1", "leaf2", "leaf3", "spine2"] {
            self.fabric
                .with_faults(sw, |f| f.command_latency = Duration::from_millis(60));
        }
    }

    fn metrics(&self) -> String {
        let mut c = jobnet::drivers::transport::daemon::Client::connect(
            &self.socket(),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|_| panic!("jobnetd does not answer"));
        let body = c
            .call_raw("/metrics", None::<&()>, Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("no metrics"));
        String::from_utf8(body).unwrap()
    }

    fn empty(&self) -> bool {
        self.fabric.snapshot() == self.baseline
    }

    fn signal_jobnetd(&self, signal: i32) {
        let pid = self.jobnetd.as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

impl Drop for SshLab {
    fn drop(&mut self) {
        if let Some(mut c) = self.jobnetd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn state_of(lab: &SshLab, job: &str) -> String {
    let o = lab
        .cmd(false, &["status", "--job", job, "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["jobs"][0]["state"].as_str().unwrap_or("").to_string()
}

/// `jobnet` processes through jobnetd: the first `up` logs in once per device, the next `up`s
/// and `down`s not at all (without jobnetd every `up` logs in again); the socket is the
/// service user's alone (mode 0600).
#[test]
fn jobnet_processes_reuse_jobnetd_s_warm_sessions() {
    let lab = SshLab::new("warm");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(lab.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    assert_eq!(lab.up(true, "1"), (0, String::new()));
    // One or two per device of the job (its two reads of a device go at once).
    let cold = lab.running.logins();
    assert!((4..=8).contains(&cold), "{cold} logins for 4 devices");
    assert_eq!(lab.jn(true, &["down", "--job", "1"]).0, 0);
    assert_eq!(lab.up(true, "2").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "2"]).0, 0);
    // Warm: at most two sessions per device ever (a job's two reads of it at once), not a
    // login per process.
    let cold = lab.running.logins();
    assert!(cold <= 8, "warm: {cold} logins for 4 devices over two jobs");
    assert!(lab.empty());
    let m = lab.metrics();
    assert_eq!(metric(&m, "jobnetd_logins_total"), cold, "{m}");
    assert!(metric(&m, "jobnetd_sessions_reused_total") >= 12, "{m}");
    // SIGHUP: idle sessions closed, jobnetd goes on; the next job logs in again.
    lab.signal_jobnetd(libc::SIGHUP);
    let started = std::time::Instant::now();
    while metric(&lab.metrics(), "jobnetd_sessions_closed_total") < cold {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            lab.metrics()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lab.up(true, "4").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "4"]).0, 0);
    let after_hup = lab.running.logins();
    assert!(
        (cold + 4..=cold + 8).contains(&after_hup),
        "new logins after SIGHUP: {after_hup}"
    );
    // Without jobnetd, as before: a login per device and process.
    assert_eq!(lab.up(false, "3").0, 0);
    assert_eq!(lab.running.logins(), after_hup + 4);
    assert_eq!(lab.jn(false, &["down", "--job", "3"]).0, 0);
    assert!(lab.empty());
}

/// A process killed while it holds a session lent by jobnetd: jobnetd closes it (it is never
/// lent again, its state is unknown). A `jobnet down` killed with -9 after handing its undos to
/// jobnetd: the next `down` finishes the job from its journal. A `jobnet up` killed with -9
/// after handing its changes to jobnetd: the `down` right after it waits for them to be sent,
/// then undoes them; the next `up` works.
#[test]
fn a_killed_jobnet_s_sessions_are_closed_and_its_handed_over_changes_undone() {
    use jobnet::drivers::transport::daemon::{Client, OpenReply, OpenRequest};
    let lab = SshLab::new("client-killed");
    // A process that borrowed a session and died (its connection closed without handing the
    // session back; jobnet borrows for dialects jobnetd does not merge): jobnetd closes the
    // session, never lends it again.
    let t = topology::load(&lab.dir.join("topology.yaml"), &DriverSet::builtin())
        .unwrap()
        .topology;
    let sw = t.switches.iter().find(|s| s.name == "leaf1").unwrap();
    let open = OpenRequest {
        target: Target::new(
            &sw.name,
            &sw.driver,
            &sw.address,
            sw.credentials.as_deref(),
            false,
        ),
        profile: jobnet::drivers::BUILTIN
            .iter()
            .find(|(n, _)| *n == "arista-eos")
            .unwrap()
            .1
            .to_string(),
        login: LoginOptions {
            credentials: lab.dir.join("credentials.yaml"),
            known_hosts: lab.dir.join("known_hosts"),
            trust_on_first_use: false,
            connect_timeout_ms: 10_000,
            command_timeout_ms: 10_000,
            sessions_per_device: 4,
        },
        wait_ms: 10_000,
    };
    let mut borrower = Client::connect(&lab.socket(), Duration::from_secs(5)).unwrap();
    let _: OpenReply = borrower
        .call("/v1/sessions", Some(&open), Duration::from_secs(20))
        .unwrap();
    assert_eq!(metric(&lab.metrics(), "jobnetd_sessions_lent"), 1);
    drop(borrower);
    let started = std::time::Instant::now();
    loop {
        let m = lab.metrics();
        if metric(&m, "jobnetd_sessions_lent") == 0 {
            assert!(metric(&m, "jobnetd_sessions_orphaned_total") >= 1, "{m}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{m}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A `down` killed with -9 after handing its undos to jobnetd: the next `down` waits for
    // them, then finishes the job from its journal.
    assert_eq!(lab.up(true, "1").0, 0);
    lab.slow();
    let mut child = lab
        .cmd(true, &["down", "--job", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !undone_any(&lab.dir.join("state.db"), "1") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the down never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, err) = lab.jn(true, &["down", "--job", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab.empty(), "{:?}", lab.fabric.snapshot());
    // An `up` killed after handing changes over: `down` at once still leaves nothing.
    let mut child = lab.spawn_up("2");
    common::wait_for_done(&lab.dir.join("state.db"), "2", 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, err) = lab.jn(true, &["down", "--job", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab.empty(), "{:?}", lab.fabric.snapshot());
    assert_eq!(lab.up(true, "3").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "3"]).0, 0);
    assert!(lab.empty());
}

/// Whether `job`'s journal has an operation undone.
fn undone_any(state: &Path, job: &str) -> bool {
    let Ok(Some(store)) = Store::open_existing(state) else {
        return false;
    };
    let job = JobId::parse(job).unwrap();
    store.journal(&job).is_ok_and(|j| {
        j.iter()
            .any(|r| r.status == jobnet::state::JournalStatus::Undone)
    })
}

/// jobnetd killed with -9 in the middle of an `up`: the job loses its sessions, unwinds over
/// direct sessions and exits 4; nothing is left on any switch.
#[test]
fn jobnetd_killed_mid_up_unwinds_the_job_directly() {
    let mut lab = SshLab::new("daemon-killed");
    lab.slow();
    let child = lab.spawn_up("1");
    common::wait_for_done(&lab.dir.join("state.db"), "1", 2);
    let mut d = lab.jobnetd.take().unwrap();
    d.kill().unwrap();
    d.wait().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("connection lost"), "{err}");
    assert!(lab.empty(), "{:?}", lab.fabric.snapshot());
    assert_eq!(state_of(&lab, "1"), "down");
    // The socket is left behind by -9: jobs go direct until jobnetd is back.
    assert_eq!(lab.up(true, "2").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "2"]).0, 0);
    lab.start_jobnetd();
    assert_eq!(lab.up(true, "3").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "3"]).0, 0);
    assert!(lab.empty());
}

/// SIGTERM to jobnetd during an `up` (systemctl stop, a restart): the job in flight finishes
/// on its sessions and comes up; jobnetd then exits 0 and removes its socket.
#[test]
fn a_graceful_stop_lets_the_job_in_flight_finish() {
    let mut lab = SshLab::new("graceful");
    lab.slow();
    let child = lab.spawn_up("1");
    common::wait_for_done(&lab.dir.join("state.db"), "1", 2);
    lab.signal_jobnetd(libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status = lab.jobnetd.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!lab.socket().exists(), "the socket is removed");
    assert_eq!(state_of(&lab, "1"), "up");
    assert_eq!(lab.jn(true, &["down", "--job", "1"]).0, 0);
    assert!(lab.empty());
}

/// The shipped systemd unit starts jobnetd with options it has, on the socket `jobnet` looks
/// for by default, and stops it with the signal that drains.
#[test]
fn the_systemd_unit_uses_options_jobnetd_has() {
    let unit = std::fs::read_to_string("docs/systemd/jobnetd.service").unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart= line");
    let help = Command::new(env!("CARGO_BIN_EXE_jobnetd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = exec
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.len() >= 4, "{exec}");
    for flag in flags {
        assert!(help.contains(flag), "jobnetd has no {flag}:\n{help}");
    }
    assert!(exec.contains(&format!("--socket {}", jobnet::context::DAEMON_SOCKET)));
    assert!(unit.contains("KillSignal=SIGTERM"));
    assert!(unit.contains("RuntimeDirectory=jobnet"));
}

/// jobnetd killed with -9 in the middle of a burst of `up`s: every job either came up and is
/// correct, or unwound (exit 4) with nothing left behind; `recover` finds nothing to do, and
/// taking every job down leaves every switch as it was.
#[test]
fn jobnetd_killed_mid_burst_leaves_every_job_up_or_unwound() {
    let mut lab = SshLab::new("daemon-killed-burst");
    lab.slow();
    let jobs: Vec<(String, &str)> = [
        "cn001",
        "cn002,cn030",
        "cn003,cn041",
        "cn004,cn031",
        "cn005",
        "cn006,cn032",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| (format!("{}", i + 1), *n))
    .collect();
    let topo = lab.dir.join("topology.yaml").to_str().unwrap().to_string();
    let children: Vec<Child> = jobs
        .iter()
        .map(|(job, nodes)| {
            lab.cmd(
                true,
                &[
                    "up",
                    "--topology",
                    &topo,
                    "--job",
                    job,
                    "--nodes",
                    nodes,
                    "--pkey",
                    "none",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    common::wait_for_done(&lab.dir.join("state.db"), "1", 1);
    let mut d = lab.jobnetd.take().unwrap();
    d.kill().unwrap();
    d.wait().unwrap();
    let mut up = Vec::new();
    for ((job, _), child) in jobs.iter().zip(children) {
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => {
                assert_eq!(state_of(&lab, job), "up", "job {job}");
                up.push(job.clone());
            }
            Some(4) => assert_eq!(state_of(&lab, job), "down", "job {job}: {err}"),
            other => panic!("job {job}: exit {other:?}: {err}"),
        }
    }
    eprintln!(
        "{} of {} jobs came up, the others unwound",
        up.len(),
        jobs.len()
    );
    let (code, err) = lab.jn(false, &["recover"]);
    assert_eq!(code, 0, "{err}");
    // Every job that came up carries its VLAN exactly where its plan says: taking them down
    // restores every switch.
    for job in &up {
        assert_eq!(lab.jn(false, &["down", "--job", job]).0, 0);
    }
    assert!(lab.empty(), "{:?}", lab.fabric.snapshot());
}

/// SIGTERM to a `jobnet up` that works through jobnetd (Slurm's PrologEpilogTimeout): it stops,
/// undoes what it applied (through jobnetd again) and exits 4; nothing is left on any switch
/// and no session stays lent.
#[test]
fn a_signal_during_up_through_jobnetd_unwinds_and_exits_4() {
    let lab = SshLab::new("signal");
    lab.slow();
    let child = lab.spawn_up("1");
    common::wait_for_done(&lab.dir.join("state.db"), "1", 2);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(lab.empty(), "{:?}", lab.fabric.snapshot());
    assert_eq!(state_of(&lab, "1"), "down");
    let started = std::time::Instant::now();
    while metric(&lab.metrics(), "jobnetd_sessions_lent") > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            lab.metrics()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A changed credentials file (a rotated password): the next job logs in afresh with it, and
/// the sessions logged in with the old file are closed, not kept.
#[test]
fn a_changed_credentials_file_gets_new_logins() {
    let lab = SshLab::new("rotated");
    assert_eq!(lab.up(true, "1").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "1"]).0, 0);
    // One or two per device of the job: its two reads of a device go at once.
    let first = lab.running.logins();
    assert!((4..=8).contains(&first), "{first}");
    assert_eq!(lab.up(true, "1b").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "1b"]).0, 0);
    // Warm: at most the second session of a device whose reads the first job did not race.
    let first = lab.running.logins();
    assert!(first <= 8, "warm: {first} logins for 4 devices");
    let creds = lab.dir.join("credentials.yaml");
    let text = std::fs::read_to_string(&creds).unwrap();
    std::fs::write(&creds, format!("{text}\n# rotated\n")).unwrap();
    assert_eq!(lab.up(true, "2").0, 0);
    assert_eq!(lab.jn(true, &["down", "--job", "2"]).0, 0);
    let second = lab.running.logins() - first;
    assert!(
        (4..=8).contains(&second),
        "new logins with the new file: {second}"
    );
    let m = lab.metrics();
    assert_eq!(
        metric(&m, "jobnetd_logins_total"),
        first + second,
        "counters only grow: {m}"
    );
    assert!(metric(&m, "jobnetd_sessions_closed_total") >= first, "{m}");
    assert!(lab.empty());
}

/// A socket path whose directory is a link (to somewhere another user may own) is refused,
/// naming the directory; nothing is created there.
#[test]
fn a_socket_directory_that_is_a_link_is_refused() {
    let dir = scratch("linked-dir");
    let real = dir.join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.join("link")).unwrap();
    let mut opts = serve_options(&dir);
    opts.socket = dir.join("link").join("jobnetd.sock");
    let e = Daemon::start(opts, Devices::Given(Arc::new(Devices2::default())))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("is a link or not a directory"),
        "{e}"
    );
    assert!(!real.join("jobnetd.sock").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// One job's operations on the Arista spine of the merge tests: its VLAN, the VLAN on the two
/// trunks every job shares, and its own node port (plus, for `extra`, one more node port).
fn spine_ops(i: u16, extra: bool) -> Submission {
    let vlan = VlanId::new(u64::from(101 + i)).unwrap();
    let name = format!("jobnet-j{i}");
    let mut ops = vec![
        Op::CreateVlan {
            vlan,
            name: name.clone(),
        },
        Op::TrunkAdd {
            port: "Ethernet1".into(),
            vlan,
            peer: "leaf1:Ethernet49".into(),
        },
        Op::TrunkAdd {
            port: "Ethernet2".into(),
            vlan,
            peer: "leaf2:Ethernet49".into(),
        },
        Op::TaggedAdd {
            port: format!("Ethernet{}", 5 + i),
            vlan,
            node: format!("cn{i}"),
            restricts: false,
        },
    ];
    if extra {
        ops.push(Op::TaggedAdd {
            port: "Ethernet20".into(),
            vlan,
            node: "cn20".into(),
            restricts: false,
        });
    }
    Submission {
        job: format!("j{i}"),
        vlan_name: name,
        ops,
        save: false,
        undo: false,
    }
}

/// An Arista switch of the test kit with trunks allowing no VLAN, and a driver on it.
fn merge_switch() -> (SimFabric, jobnet::testkit::sim::SimSwitch, Profile, Target) {
    let drivers = DriverSet::builtin();
    let profile = drivers.get("arista-eos").unwrap().clone();
    let fabric = SimFabric::default();
    let sw = fabric.switch("spine9", &profile);
    for p in ["Ethernet1", "Ethernet2", "Ethernet20"]
        .into_iter()
        .map(String::from)
        .chain((5..9).map(|n| format!("Ethernet{n}")))
    {
        sw.set_port(&p, SimPort::trunk(&[]));
    }
    let target = Target::new("spine9", "arista-eos", "192.0.2.9", None, false);
    (fabric, sw, profile, target)
}

/// Three jobs' operations on one Arista switch as one batch (`drivers::merge`, what jobnetd
/// does with concurrent jobs): configuration mode entered once, every job's VLAN created, each
/// shared trunk given the three VLANs in one list line, each job's own node port its own lines;
/// every job learns that each of its operations is done, and the switch carries exactly that.
#[test]
fn jobs_merged_on_one_device_share_one_list_line_per_port() {
    let (fabric, sw, profile, target) = merge_switch();
    let subs: Vec<Submission> = (0..3).map(|i| spine_ops(i, false)).collect();
    let merged = {
        let mut driver = CliDriver::open(&fabric, target, &profile, "").unwrap();
        merge::run(&mut driver, &profile, &subs)
    };
    for (s, m) in subs.iter().zip(&merged) {
        assert_eq!(m.error, None, "{}", s.job);
        assert_eq!(m.jobs, 3);
        assert_eq!(m.outcomes.len(), s.ops.len());
        let shared: Vec<&Outcome> = m.outcomes[1..3].iter().collect();
        for o in shared {
            assert!(
                matches!(o, Outcome::Done { sent } if sent.contains(&"switchport trunk allowed vlan add 101,102,103".to_string())),
                "{o:?}"
            );
        }
        assert_eq!(m.outcomes[0], Outcome::Done { sent: vec![] });
        assert_eq!(m.outcomes[3], Outcome::Done { sent: vec![] });
    }
    let log = sw.log.lock().unwrap().clone();
    let count = |l: &str| log.iter().filter(|x| x.as_str() == l).count();
    assert_eq!(count("configure terminal"), 1, "{log:#?}");
    assert_eq!(count("end"), 1, "{log:#?}");
    assert_eq!(
        count("switchport trunk allowed vlan add 101,102,103"),
        2,
        "{log:#?}"
    );
    // Each job's own node port: its own lines.
    assert_eq!(
        count("switchport trunk allowed vlan add 102"),
        1,
        "{log:#?}"
    );
    let st = sw.state.lock().unwrap().clone();
    for i in 0..3u16 {
        let vlan = 101 + i;
        assert_eq!(st.vlans.get(&vlan), Some(&format!("jobnet-j{i}")));
        for p in ["Ethernet1", "Ethernet2"] {
            assert!(st.carries(&profile, p, vlan), "{p} {vlan}");
        }
        assert!(st.carries(&profile, &format!("Ethernet{}", 5 + i), vlan));
        for j in (0..3u16).filter(|&j| j != i) {
            assert!(!st.carries(&profile, &format!("Ethernet{}", 5 + j), vlan));
        }
    }
}

/// Three jobs' undos on one Arista switch as one batch (what jobnetd does with a burst of
/// epilogs), beside a fourth job that comes up in the same batch: each shared trunk loses the
/// three VLANs in one list line, every VLAN is deleted after its ports, every job learns that
/// each of its undos is done, and the switch is left with the fourth job's VLAN alone. A refused
/// list line is sent again per job, and a refused undo stops none of the job's other undos.
#[test]
fn merged_undos_share_list_lines_and_give_the_switch_back() {
    let (fabric, sw, profile, target) = merge_switch();
    let before = sw.state.lock().unwrap().clone();
    let ups: Vec<Submission> = (0..3).map(|i| spine_ops(i, false)).collect();
    {
        let mut driver = CliDriver::open(&fabric, target.clone(), &profile, "").unwrap();
        merge::run(&mut driver, &profile, &ups);
    }
    let undo_of = |s: &Submission| Submission {
        job: s.job.clone(),
        vlan_name: merge::UNDO_NAME.into(),
        ops: s.ops.iter().rev().cloned().collect(),
        save: false,
        undo: true,
    };
    // The journal's undo lines are what a merged undo sends.
    for op in &ups[0].ops {
        assert_eq!(
            merge::undo_lines(&profile, op),
            jobnet::drivers::ops::render_op(&profile, "jobnet-j0", op).1
        );
    }
    let mut batch: Vec<Submission> = ups.iter().map(undo_of).collect();
    batch.push(spine_ops(3, false));
    sw.log.lock().unwrap().clear();
    let merged = {
        let mut driver = CliDriver::open(&fabric, target.clone(), &profile, "").unwrap();
        merge::run(&mut driver, &profile, &batch)
    };
    for m in &merged {
        assert_eq!(m.error, None);
        assert!(
            m.outcomes.iter().all(|o| matches!(o, Outcome::Done { .. })),
            "{m:?}"
        );
    }
    let log = sw.log.lock().unwrap().clone();
    let count = |l: &str| log.iter().filter(|x| x.as_str() == l).count();
    assert_eq!(count("configure terminal"), 1, "{log:#?}");
    assert_eq!(
        count("switchport trunk allowed vlan remove 101,102,103"),
        2,
        "{log:#?}"
    );
    let pos = |l: &str| log.iter().position(|x| x == l).unwrap();
    for v in 101..104 {
        assert!(
            pos(&format!("no vlan {v}")) > pos("switchport trunk allowed vlan remove 101,102,103")
        );
    }
    let st = sw.state.lock().unwrap().clone();
    assert_eq!(st.vlans.keys().copied().collect::<Vec<_>>(), vec![104]);
    for p in [
        "Ethernet1",
        "Ethernet2",
        "Ethernet5",
        "Ethernet6",
        "Ethernet7",
    ] {
        for v in 101..104 {
            assert!(!st.carries(&profile, p, v), "{p} {v}");
        }
    }

    // The fourth job's undo alone, then the three again: a refused list line goes per job,
    // and the refused job's other undos are still sent.
    {
        let mut driver = CliDriver::open(&fabric, target.clone(), &profile, "").unwrap();
        merge::run(&mut driver, &profile, &[undo_of(&spine_ops(3, false))]);
        merge::run(&mut driver, &profile, &ups);
    }
    sw.faults.lock().unwrap().reject_matching = Some("102".into());
    sw.log.lock().unwrap().clear();
    let merged = {
        let mut driver = CliDriver::open(&fabric, target, &profile, "").unwrap();
        merge::run(
            &mut driver,
            &profile,
            &ups.iter().map(undo_of).collect::<Vec<_>>(),
        )
    };
    sw.faults.lock().unwrap().reject_matching = None;
    for i in [0usize, 2] {
        assert!(
            merged[i]
                .outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Done { .. })),
            "{:?}",
            merged[i]
        );
    }
    // Job 1 (VLAN 102): every undo refused, each with its own line, and each still sent after
    // the ones before it failed (the list line went again per job).
    assert!(
        merged[1]
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Failed { .. })),
        "{:?}",
        merged[1]
    );
    let log = sw.log.lock().unwrap().clone();
    for l in [
        "switchport trunk allowed vlan remove 101,102,103",
        "switchport trunk allowed vlan remove 102",
        "no vlan 102",
    ] {
        assert!(log.iter().any(|x| x == l), "{l} not sent: {log:#?}");
    }
    let st = sw.state.lock().unwrap().clone();
    assert!(!st.vlans.contains_key(&101) && !st.vlans.contains_key(&103));
    assert!(st.vlans.contains_key(&102));
    assert_eq!(before.vlans.len(), 0);
}

/// An undo jobnetd could not send (the switch takes no login) is not done,
/// whatever the row's own outcome was: rows whose apply outcome was unknown stay to be undone
/// (`UndoFailed`, never `Undone`), `down` fails, and once the switch answers again the next
/// `down` gives it back.
#[test]
fn an_undo_jobnetd_could_not_send_stays_to_be_undone() {
    use jobnet::state::JournalStatus;
    let lab = Lab::new("undo-not-sent");
    let baseline = lab.snapshot();
    lab.up(&Failpoints::default(), "u1", "cn001").unwrap();
    let job = JobId::parse("u1").unwrap();
    // As after an `up` whose answers were lost: every operation's outcome unknown.
    for r in lab.store.journal(&job).unwrap() {
        lab.store
            .journal_set(r.id, JournalStatus::Failed, "outcome unknown")
            .unwrap();
    }
    // The switch takes no new login, and jobnetd's warm sessions are gone: jobnetd opens
    // none for the undo batch, which is not sent.
    lab.devices
        .fabric
        .with_faults("leaf1", |f| f.refuse_login = true);
    lab.daemon.as_ref().unwrap().close_idle();
    let r = apply::down(&lab.env(&Failpoints::default()), &job, false);
    assert!(r.is_err(), "{r:?}");
    let leaf1: Vec<_> = lab
        .store
        .journal(&job)
        .unwrap()
        .into_iter()
        .filter(|r| r.device.name == "leaf1")
        .collect();
    assert!(!leaf1.is_empty());
    for r in &leaf1 {
        assert_eq!(r.status, JournalStatus::UndoFailed, "{r:?}");
    }
    assert_ne!(lab.snapshot(), baseline, "nothing was undone on leaf1");
    lab.devices
        .fabric
        .with_faults("leaf1", |f| f.refuse_login = false);
    lab.down("u1");
    assert_eq!(lab.snapshot(), baseline);
}

/// A list line the device refuses is sent again per job: the refusal lands on the job whose VLAN
/// the device refused (with the device's answer to that job's own line), that job's remaining
/// operations are not sent, and the other jobs' operations are done.
#[test]
fn a_refused_list_line_fails_only_the_job_whose_vlan_was_refused() {
    let (fabric, sw, profile, target) = merge_switch();
    // The VLANs exist already: only the port operations go (the refusal hits a list line).
    let subs: Vec<Submission> = (0..3)
        .map(|i| {
            let mut s = spine_ops(i, i == 1);
            s.ops.remove(0);
            s
        })
        .collect();
    sw.faults.lock().unwrap().reject_matching = Some("102".into());
    let merged = {
        let mut driver = CliDriver::open(&fabric, target, &profile, "").unwrap();
        merge::run(&mut driver, &profile, &subs)
    };
    let log = sw.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l == "switchport trunk allowed vlan add 101,102,103"),
        "{log:#?}"
    );
    match &merged[1].error {
        Some(DeviceError::Rejected { command, .. }) => {
            assert_eq!(command, "switchport trunk allowed vlan add 102")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(merged[1].outcomes[0], Outcome::Failed { .. }));
    for o in &merged[1].outcomes[1..] {
        assert!(matches!(o, Outcome::NotSent { .. }), "{o:?}");
    }
    for i in [0usize, 2] {
        assert_eq!(merged[i].error, None);
        assert!(merged[i]
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Done { .. })));
    }
    let st = sw.state.lock().unwrap().clone();
    assert!(st.carries(&profile, "Ethernet1", 101) && st.carries(&profile, "Ethernet1", 103));
    for p in ["Ethernet1", "Ethernet2", "Ethernet6", "Ethernet20"] {
        assert!(!st.carries(&profile, p, 102), "{p}");
    }
    assert!(st.carries(&profile, "Ethernet7", 103));
}

/// Concurrent jobs through jobnetd on a slow shared switch (16 jobs on the Arista leaf1, 4
/// sessions): their operations there go in batches of several jobs (fewer batches than jobs),
/// their identical reads are answered once (fewer reads sent than asked), every job comes up
/// correct, and taking them down restores every switch.
#[test]
fn a_burst_through_jobnetd_merges_jobs_on_a_shared_switch() {
    let lab = Lab::new("merged-burst");
    lab.devices
        .fabric
        .with_faults("leaf1", |f| f.command_latency = Duration::from_millis(15));
    let baseline = lab.snapshot();
    let none = Failpoints::default();
    let jobs: Vec<String> = (1..=16).map(|i| format!("m{i}")).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let (lab, none) = (&lab, &none);
                s.spawn(move || lab.up(none, job, &format!("cn{:03}", i + 1)))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
    let batches = lab.metric("jobnetd_merged_batches_total");
    let merged = lab.metric("jobnetd_merged_jobs_total");
    assert_eq!(
        merged, 16,
        "every job's leaf1 operations went through the queue"
    );
    assert!(
        batches < merged,
        "{batches} batches for {merged} jobs' operations"
    );
    assert_eq!(lab.lent(), 0);
    // The epilogs of the array at once: each job's undo on leaf1 goes through the queue too
    // (list lines for the removals several jobs share), and every switch is back as it was.
    std::thread::scope(|s| {
        for job in &jobs {
            let lab = &lab;
            s.spawn(move || lab.down(job));
        }
    });
    let undo_batches = lab.metric("jobnetd_merged_batches_total") - batches;
    let undone = lab.metric("jobnetd_merged_jobs_total") - merged;
    assert_eq!(undone, 16, "every job's leaf1 undo went through the queue");
    assert!(
        undo_batches < undone,
        "{undo_batches} batches for {undone} jobs' undos"
    );
    assert_eq!(lab.snapshot(), baseline);
}

/// Job `i`'s operations on an NX-OS leaf: its VLAN and three node ports in a row
/// (`Ethernet1/{3i+1}`..), which NX-OS takes as one ranged block.
fn nxos_ops(i: u16) -> Submission {
    let vlan = VlanId::new(u64::from(201 + i)).unwrap();
    let name = format!("jobnet-n{i}");
    let mut ops = vec![Op::CreateVlan {
        vlan,
        name: name.clone(),
    }];
    for p in 1..=3 {
        ops.push(Op::TaggedAdd {
            port: format!("Ethernet1/{}", 3 * i + p),
            vlan,
            node: format!("cn{i}{p}"),
            restricts: false,
        });
    }
    Submission {
        job: format!("n{i}"),
        vlan_name: name,
        ops,
        save: false,
        undo: false,
    }
}

/// Jobs merged on a dialect with ranged blocks (NX-OS): one configuration-mode entry for all,
/// each job's node ports as its own ranged block; a ranged line the device refuses is sent
/// again port by port, the refusal lands on that job at the exact port, and the other job's
/// block is done.
#[test]
fn merged_jobs_keep_their_ranged_blocks_and_a_refused_one_names_its_port() {
    let drivers = DriverSet::builtin();
    let profile = drivers.get("cisco-nxos").unwrap().clone();
    let fabric = SimFabric::default();
    let sw = fabric.switch("leaf9", &profile);
    for n in 1..=6 {
        sw.set_port(&format!("Ethernet1/{n}"), SimPort::trunk(&[]));
    }
    let target = Target::new("leaf9", "cisco-nxos", "192.0.2.19", None, false);
    let subs = vec![nxos_ops(0), nxos_ops(1)];
    let merged = {
        let mut driver = CliDriver::open(&fabric, target.clone(), &profile, "").unwrap();
        merge::run(&mut driver, &profile, &subs)
    };
    assert!(merged.iter().all(|m| m.error.is_none()), "{merged:?}");
    let log = sw.log.lock().unwrap().clone();
    let count = |l: &str| log.iter().filter(|x| x.as_str() == l).count();
    assert_eq!(count("configure terminal"), 1, "{log:#?}");
    assert_eq!(count("interface Ethernet1/1-3"), 1, "{log:#?}");
    assert_eq!(count("interface Ethernet1/4-6"), 1, "{log:#?}");
    let st = sw.state.lock().unwrap().clone();
    for n in 1..=6u16 {
        let vlan = if n <= 3 { 201 } else { 202 };
        assert!(st.carries(&profile, &format!("Ethernet1/{n}"), vlan), "{n}");
    }

    // Again on a fresh switch whose Ethernet1/5 refuses changes.
    let fabric = SimFabric::default();
    let sw = fabric.switch("leaf9", &profile);
    for n in 1..=6 {
        sw.set_port(&format!("Ethernet1/{n}"), SimPort::trunk(&[]));
    }
    sw.faults.lock().unwrap().refuse_ports = vec!["Ethernet1/5".into()];
    let merged = {
        let mut driver = CliDriver::open(&fabric, target, &profile, "").unwrap();
        merge::run(&mut driver, &profile, &subs)
    };
    assert_eq!(merged[0].error, None);
    match &merged[1].error {
        Some(DeviceError::Rejected { .. }) => {}
        other => panic!("{other:?}"),
    }
    let o = &merged[1].outcomes;
    assert!(matches!(o[0], Outcome::Done { .. }), "{o:?}");
    assert!(matches!(o[1], Outcome::Done { .. }), "{o:?}");
    assert!(matches!(o[2], Outcome::Failed { .. }), "{o:?}");
    assert!(matches!(o[3], Outcome::NotSent { .. }), "{o:?}");
    let log = sw.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l == "interface Ethernet1/4-6"),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l == "interface Ethernet1/5"), "{log:#?}");
    let st = sw.state.lock().unwrap().clone();
    assert!(st.carries(&profile, "Ethernet1/4", 202));
    assert!(!st.carries(&profile, "Ethernet1/5", 202));
    assert!(!st.carries(&profile, "Ethernet1/6", 202));
}

/// jobnetd refuses, before anything is sent, a hand-over whose port name could add a line to
/// the stream it shares with other jobs; nothing reaches the switch.
#[test]
fn jobnetd_refuses_a_hand_over_with_a_port_name_that_is_not_one() {
    let lab = Lab::new("bad-hand-over");
    let profile = lab.drivers.get("arista-eos").unwrap().clone();
    let target = Target::new("spine1", "arista-eos", "192.0.2.1", None, false);
    let merger = lab
        .via
        .merger(&target, &profile)
        .expect("arista-eos is merged through jobnetd");
    let before = lab.snapshot();
    let mut sub = spine_ops(0, false);
    if let Op::TrunkAdd { port, .. } = &mut sub.ops[1] {
        *port = "Ethernet1\nno vlan 1".into();
    }
    match merger.apply_merged(&target, &profile, sub, Duration::from_secs(5)) {
        Err(jobnet::drivers::transport::Unmerged::Unreachable(why)) => {
            assert!(why.contains("is not a port name"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lab.snapshot(), before);
    assert_eq!(lab.metric("jobnetd_merged_batches_total"), 0);
}
