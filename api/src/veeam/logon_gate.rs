//! The logon gate: bounds the password work a flood of logons can cause, and throttles guessing.
//!
//! - **Verifier threads.** Password checks (argon2id, ~19 MiB each) run on a fixed set of
//!   threads, one per core unless configured, each reusing one memory block for every check. So
//!   memory stays flat under any flood (threads × block), and the rest of the server keeps the
//!   CPU time the checks leave it.
//! - **Bounded queue.** A check waits in a queue of `4 × threads`; a logon that finds it full is
//!   answered at once with 503 + Retry-After instead of piling up.
//! - **Throttling.** Failed logons are counted per user name and per client address in fixed
//!   one-minute windows. Past the limit, logons for that name or from that address get 429 +
//!   Retry-After without any password work, until the window ends. The counts live in this
//!   process (each `api` process throttles on its own) and in a bounded map.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const WINDOW: Duration = Duration::from_secs(60);
/// Failed logons per user name, and per client address, in one window.
pub const FAILURES_PER_USER: u32 = 10;
pub const FAILURES_PER_ADDRESS: u32 = 30;
/// More distinct names and addresses than this are not tracked (the map must stay bounded);
/// expired windows are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many checks waiting: try again in a moment.
    Busy,
    /// Too many failures: try again after this long.
    Throttled(Duration),
}

struct Check {
    password: String,
    phc: Option<String>,
    reply: oneshot::Sender<bool>,
}

#[derive(Clone)]
pub struct LogonGate {
    queue: mpsc::SyncSender<Check>,
    failures: Arc<Mutex<HashMap<Key, Window>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

struct Window {
    started: Instant,
    failures: u32,
}

impl LogonGate {
    /// Starts `threads` verifier threads (at least one).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (queue, checks) = mpsc::sync_channel::<Check>(threads * 4);
        let checks = Arc::new(Mutex::new(checks));
        for n in 0..threads {
            let checks = checks.clone();
            let spawned = std::thread::Builder::new().name(format!("password-check-{n}")).spawn(move || {
                let mut memory = Vec::new();
                loop {
                    let next = checks.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
                    let Ok(check) = next else { return };
                    let valid = verify_user(&mut memory, &check.password, check.phc.as_deref());
                    let _ = check.reply.send(valid);
                }
            });
            if let Err(err) = spawned {
                tracing::error!(%err, "cannot start a password-check thread");
            }
        }
        Self { queue, failures: Arc::default() }
    }

    /// `Err` when the name or the address has failed too often lately.
    pub fn admit(&self, user: &str, address: Option<IpAddr>) -> Result<(), Refusal> {
        let Ok(failures) = self.failures.lock() else { return Ok(()) };
        let keys = [(Some(user_key(user)), FAILURES_PER_USER), (address.map(Key::Address), FAILURES_PER_ADDRESS)];
        let wait = keys
            .iter()
            .filter_map(|(key, limit)| {
                let window = failures.get(key.as_ref()?)?;
                let left = WINDOW.checked_sub(window.started.elapsed())?;
                (window.failures >= *limit).then_some(left)
            })
            .max();
        match wait {
            Some(left) => Err(Refusal::Throttled(left)),
            None => Ok(()),
        }
    }

    /// Checks `password` against `phc` (or, for an unknown user, against a throw-away hash: the
    /// same work, so timing does not tell which names exist) on a verifier thread.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Check { password, phc, reply }).map_err(|_| Refusal::Busy)?;
        answer.await.map_err(|_| Refusal::Busy)
    }

    pub fn record_failure(&self, user: &str, address: Option<IpAddr>) {
        let Ok(mut failures) = self.failures.lock() else { return };
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, window| window.started.elapsed() < WINDOW);
        }
        for key in [Some(user_key(user)), address.map(Key::Address)].into_iter().flatten() {
            if failures.len() >= MAX_TRACKED && !failures.contains_key(&key) {
                continue;
            }
            let window = failures.entry(key).or_insert_with(|| Window { started: Instant::now(), failures: 0 });
            if window.started.elapsed() >= WINDOW {
                *window = Window { started: Instant::now(), failures: 0 };
            }
            window.failures += 1;
        }
    }
}

fn user_key(user: &str) -> Key {
    Key::User(user.to_lowercase())
}

fn verify_user(memory: &mut Vec<Block>, password: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match phc {
        Some(phc) => verify(memory, password, phc),
        None => {
            let dummy = DUMMY.get_or_init(|| {
                crate::passwords::random_secret().and_then(|s| crate::passwords::hash(&s)).unwrap_or_default()
            });
            let _ = verify(memory, password, dummy);
            false
        }
    }
}

/// Verifies `password` against an argon2 PHC string, with `memory` as the working memory (grown
/// once to the hash's size, then reused). The comparison is constant-time (`Output`'s `==`).
fn verify(memory: &mut Vec<Block>, password: &str, phc: &str) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
            .ok()?;
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_on_a_verifier_thread_accepts_only_the_right_password() {
        let gate = LogonGate::new(1);
        let phc = crate::passwords::hash("s3cret").expect("hash");
        assert_eq!(gate.verify("s3cret".into(), Some(phc.clone())).await, Ok(true));
        assert_eq!(gate.verify("S3cret".into(), Some(phc)).await, Ok(false));
        assert_eq!(gate.verify("s3cret".into(), None).await, Ok(false), "unknown user");
        assert_eq!(gate.verify("s3cret".into(), Some("not a hash".into())).await, Ok(false));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let gate = LogonGate::new(1);
        let phc = crate::passwords::hash("s3cret").expect("hash");
        let checks: Vec<_> = (0..40).map(|_| gate.verify("wrong".into(), Some(phc.clone()))).collect();
        let answers = futures_util::future::join_all(checks).await;
        assert!(answers.contains(&Err(Refusal::Busy)), "some were refused");
        assert!(answers.contains(&Ok(false)), "the queued ones were checked");
    }

    #[test]
    fn failures_past_the_limit_throttle_the_name_and_the_address() {
        let gate = LogonGate::new(1);
        let here: IpAddr = [10, 0, 0, 1].into();
        let elsewhere: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..FAILURES_PER_USER {
            assert_eq!(gate.admit("Admin", Some(here)), Ok(()));
            gate.record_failure("Admin", Some(here));
        }
        assert!(matches!(gate.admit("admin", Some(elsewhere)), Err(Refusal::Throttled(left)) if left <= WINDOW));
        assert_eq!(gate.admit("bob", Some(elsewhere)), Ok(()), "other names are not affected");
        for n in 0..FAILURES_PER_ADDRESS {
            gate.record_failure(&format!("user{n}"), Some(elsewhere));
        }
        assert!(matches!(gate.admit("carol", Some(elsewhere)), Err(Refusal::Throttled(_))), "the address is");
        assert_eq!(gate.admit("carol", Some([10, 0, 0, 3].into())), Ok(()));
    }
}
