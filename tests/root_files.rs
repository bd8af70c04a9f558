//! Files root writes where the service user can write (issue: privilege escalation from the
//! Slurm user to root). Run as root against a directory owned by `nobody` holding planted
//! symbolic links, hard links and FIFOs for every file jobnet creates or opens there — the
//! state file and SQLite's -wal/-shm, the lock directory and its session-slot and port locks,
//! partitions.conf's lock, backup, generation counter and the file itself, the address files'
//! directories, network.json, node records — and checks that no file outside changed owner,
//! mode or content, and that each refusal names what it found.

mod common;

use jobnet::base::fsutil::Dir;
use jobnet::base::types::JobId;
use jobnet::jobs::network::JobNetwork;
use jobnet::node::{Record, Records};
use jobnet::state::sqlite::SqliteStore;
use jobnet::state::StateStore;
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NOBODY: u32 = 65534;
const SECRET: &str = "root:$6$planted$hash:19000:0:99999:7:::\n";

/// Root, or the test is skipped (failed in CI): planting files as uid 65534 needs a real
/// root; a user namespace's single-uid map has no uid 65534.
fn root_or_skip(test: &str) -> bool {
    common::needs_root(test, "plants files owned by uid 65534 for root to meet")
}

struct Lab {
    top: PathBuf,
    /// Root's own files, 0600: none may change.
    secrets: Vec<PathBuf>,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let top = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("root-files")
            .join(name);
        let _ = std::fs::remove_dir_all(&top);
        std::fs::create_dir_all(top.join("root")).unwrap();
        std::fs::set_permissions(top.join("root"), std::fs::Permissions::from_mode(0o700)).unwrap();
        Lab {
            top,
            secrets: Vec::new(),
        }
    }

    /// A root-owned 0600 file outside the service user's reach.
    fn secret(&mut self, name: &str) -> PathBuf {
        let p = self.top.join("root").join(name);
        std::fs::write(&p, SECRET).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        self.secrets.push(p.clone());
        p
    }

    /// A directory the service user (`nobody`) owns, as the state directory is the Slurm user's.
    fn service_dir(&self, name: &str) -> PathBuf {
        let d = self.top.join(name);
        std::fs::create_dir_all(&d).unwrap();
        chown(&d, NOBODY);
        d
    }

    fn check(&self) {
        for s in &self.secrets {
            let m = std::fs::symlink_metadata(s).unwrap();
            assert_eq!(m.uid(), 0, "{} changed owner", s.display());
            assert_eq!(m.mode() & 0o7777, 0o600, "{} changed mode", s.display());
            assert_eq!(
                std::fs::read_to_string(s).unwrap(),
                SECRET,
                "{} changed content",
                s.display()
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.top);
    }
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

/// What the service user could plant at `at`, pointing at (or linking) `secret`.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Symlink,
    HardLink,
    Fifo,
}

fn plant(kind: Plant, at: &Path, secret: &Path) {
    match kind {
        Plant::Symlink => std::os::unix::fs::symlink(secret, at).unwrap(),
        Plant::HardLink => std::fs::hard_link(secret, at).unwrap(),
        Plant::Fifo => {
            let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        }
    }
    if !matches!(kind, Plant::HardLink) {
        chown(at, NOBODY);
    }
}

const ALL: [Plant; 3] = [Plant::Symlink, Plant::HardLink, Plant::Fifo];

fn must_refuse<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: accepted a planted file"),
        Err(e) => {
            let e = e.to_string();
            assert!(
                !e.contains("$6$"),
                "{what}: the message shows the secret: {e}"
            );
            e
        }
    }
}

/// Files jobnet replaces (rename over the entry): a planted link or FIFO is refused; a hard
/// link is simply replaced as an entry (its other name, root's file, keeps its content).
fn must_not_follow<T, E: std::fmt::Display>(r: Result<T, E>, kind: Plant, what: &str) {
    match (kind, r) {
        (Plant::HardLink, Ok(_)) => {}
        (_, r) => {
            must_refuse(r, what);
        }
    }
}

#[test]
fn state_files_and_locks_planted_by_the_service_user_are_refused() {
    if !root_or_skip("state_files_and_locks_planted_by_the_service_user_are_refused") {
        return;
    }
    let mut lab = Lab::new("state");
    let owner = Some((NOBODY, NOBODY));
    for (i, kind) in ALL.into_iter().enumerate() {
        for suffix in ["", "-wal", "-shm"] {
            let d = lab.service_dir(&format!("s{i}{suffix}"));
            let secret = lab.secret(&format!("state{i}{suffix}"));
            plant(kind, &d.join(format!("state.db{suffix}")), &secret);
            let e = must_refuse(
                SqliteStore::open_as(&d.join("state.db"), owner),
                &format!("state.db{suffix} as {kind:?}"),
            );
            assert!(e.contains(&format!("state.db{suffix}")), "{e}");
        }
    }
    // A clean state directory: the store works, and its locks are safe.
    let d = lab.service_dir("clean");
    let store = SqliteStore::open_as(&d.join("state.db"), owner).unwrap();
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let m = std::fs::symlink_metadata(d.join(f)).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o600), "{f}");
    }
    let held = store
        .device_slot("sw0", 1, Duration::from_millis(50))
        .unwrap();
    drop(held);
    for (i, kind) in ALL.into_iter().enumerate() {
        let slot = lab.secret(&format!("slot{i}"));
        plant(kind, &d.join("locks").join(format!("sw{i}x.0.lock")), &slot);
        let e = must_refuse(
            store.device_slot(&format!("sw{i}x"), 1, Duration::from_millis(50)),
            &format!("slot lock as {kind:?}"),
        );
        assert!(e.contains("remove it"), "{e}");
        let port = lab.secret(&format!("port{i}"));
        plant(
            kind,
            &d.join("locks").join(format!("sw{i}.port.Ethernet1.lock")),
            &port,
        );
        must_refuse(
            store.port_lock(&format!("sw{i}"), "Ethernet1", Duration::from_millis(50)),
            &format!("port lock as {kind:?}"),
        );
    }
    drop(store);
    // The whole lock directory swapped for a link to root's directory.
    let d2 = lab.service_dir("locklink");
    let store = SqliteStore::open_as(&d2.join("state.db"), owner).unwrap();
    let rootdir = lab.top.join("root");
    std::os::unix::fs::symlink(&rootdir, d2.join("locks")).unwrap();
    chown(&d2.join("locks"), NOBODY);
    let _ = lab.secret("sw9.0.lock");
    let e = must_refuse(
        store.device_slot("sw9", 1, Duration::from_millis(50)),
        "locks/ as a link",
    );
    assert!(e.contains("symbolic link"), "{e}");
    lab.check();
}

#[test]
fn partitions_conf_companions_planted_by_the_service_user_are_refused() {
    if !root_or_skip("partitions_conf_companions_planted_by_the_service_user_are_refused") {
        return;
    }
    use jobnet::ib::partitions::file;
    let mut lab = Lab::new("partitions");
    let admin = "Default=0x7fff, ipoib : ALL=full;\n";
    let names = [
        ".partitions.conf.jobnet-lock",
        "partitions.conf.jobnet-prev",
        ".partitions.conf.jobnet-gen",
    ];
    for (i, kind) in ALL.into_iter().enumerate() {
        for (k, name) in names.iter().enumerate() {
            let d = lab.service_dir(&format!("p{i}{k}"));
            let conf = d.join("partitions.conf");
            std::fs::write(&conf, admin).unwrap();
            let secret = lab.secret(&format!("p{i}{k}"));
            plant(kind, &d.join(name), &secret);
            let r = file::update(&conf, Duration::from_millis(100), |_| {
                format!("{admin}# changed\n")
            });
            if k == 0 || !matches!(kind, Plant::HardLink) {
                must_refuse(r, &format!("{name} as {kind:?}"));
                assert_eq!(
                    std::fs::read_to_string(&conf).unwrap(),
                    admin,
                    "{name} as {kind:?}: partitions.conf untouched"
                );
            } else {
                must_not_follow(r, kind, name);
            }
        }
    }
    // partitions.conf itself a link the service user made: refused, never read or echoed.
    let d = lab.service_dir("plink");
    let secret = lab.secret("shadow");
    std::os::unix::fs::symlink(&secret, d.join("partitions.conf")).unwrap();
    chown(&d.join("partitions.conf"), NOBODY);
    let e = must_refuse(
        file::update(
            &d.join("partitions.conf"),
            Duration::from_millis(100),
            |_| admin.to_string(),
        ),
        "partitions.conf as a planted link",
    );
    assert!(
        e.contains(&secret.display().to_string()),
        "names the target: {e}"
    );
    // A link root made in a root-only directory (a shared file for standby SMs) is edited in
    // place: the target changes, the link stays a link.
    let shared = lab.top.join("root").join("shared.conf");
    std::fs::write(&shared, admin).unwrap();
    let rootonly = lab.top.join("rootonly");
    std::fs::create_dir_all(&rootonly).unwrap();
    std::fs::set_permissions(&rootonly, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&shared, rootonly.join("partitions.conf")).unwrap();
    file::update(
        &rootonly.join("partitions.conf"),
        Duration::from_millis(100),
        |_| format!("{admin}# jobnet\n"),
    )
    .unwrap();
    assert!(std::fs::symlink_metadata(rootonly.join("partitions.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&shared).unwrap(),
        format!("{admin}# jobnet\n")
    );
    lab.check();
}

#[test]
fn address_files_network_json_and_node_records_never_follow_planted_links() {
    if !root_or_skip("address_files_network_json_and_node_records_never_follow_planted_links") {
        return;
    }
    let mut lab = Lab::new("jobs");
    let job = JobId::parse("7").unwrap();
    let net = JobNetwork {
        job: "7".into(),
        vlan: Some(100),
        pkey: None,
        nodes: vec!["n1".into()],
        addresses: None,
    };
    for (i, kind) in ALL.into_iter().enumerate() {
        // network.json planted in the job's directory.
        let d = lab.service_dir(&format!("net{i}"));
        std::fs::create_dir_all(d.join("7")).unwrap();
        chown(&d.join("7"), NOBODY);
        let secret = lab.secret(&format!("net{i}"));
        plant(kind, &d.join("7").join("network.json"), &secret);
        must_not_follow(
            net.write(&d, &job),
            kind,
            &format!("network.json as {kind:?}"),
        );
        if !matches!(kind, Plant::HardLink) {
            must_refuse(JobNetwork::read(&d, &job), "reading a planted network.json");
        }
        // Node records.
        let r = lab.service_dir(&format!("rec{i}"));
        let secret = lab.secret(&format!("rec{i}"));
        plant(kind, &r.join("7.json"), &secret);
        let records = Records::new(&r);
        must_not_follow(
            records.save(
                &Record {
                    job: "7".into(),
                    vlan: 100,
                    changes: vec![],
                },
                &job,
            ),
            kind,
            &format!("node record as {kind:?}"),
        );
        if !matches!(kind, Plant::HardLink) {
            must_refuse(records.load(&job), "reading a planted node record");
        }
    }
    // The job's directory itself a link to root's directory (network.json, address files).
    let d = lab.service_dir("jobdir");
    std::os::unix::fs::symlink(lab.top.join("root"), d.join("7")).unwrap();
    chown(&d.join("7"), NOBODY);
    let _ = lab.secret("network.json");
    must_refuse(net.write(&d, &job), "the job directory as a link");
    // Address files: <dir>/<job>/cloud-init/<vm>/network-config, each level a planted link.
    for level in ["7", "7/cloud-init", "7/cloud-init/vm1"] {
        let d = lab.service_dir(&format!("addr-{}", level.replace('/', "-")));
        let parent = d.join(level).parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&parent).unwrap();
        std::os::unix::fs::symlink(lab.top.join("root"), d.join(level)).unwrap();
        let base = Dir::open(&d).unwrap();
        let mut dir = base;
        let mut refused = false;
        for part in ["7", "cloud-init", "vm1"] {
            match dir.sub(OsStr::new(part), 0o750, Some((NOBODY, NOBODY)), true) {
                Ok(next) => dir = next,
                Err(e) => {
                    assert!(e.to_string().contains("symbolic link"), "{e}");
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "{level}: a planted link was followed");
    }
    lab.check();
}
