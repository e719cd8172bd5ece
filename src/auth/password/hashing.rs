//! Password hashing: Argon2id with OWASP's parameters, off the async workers, behind a bound
//! on concurrent hashes and a bounded queue, with Argon2's working memory handed on.
//!
//! Passwords are hashed and checked in NFC (NIST SP 800-63B 5.1.1.2): one keyboard or system
//! sends `é` as one code point, another as `e` and a combining accent, and a person typing
//! the same characters must get in. A hash made before this rule from a non-NFC password
//! still matches the password as typed ([`PasswordMatch::AsTyped`]); the caller then stores
//! a hash of the NFC form.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// OWASP's Argon2id recommendation: 19 MiB, two passes, one lane.
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    // The parameters are constants that `Params::new` accepts; fall back to the crate's
    // defaults (the same OWASP values) rather than panic if that ever changed.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The form a password is hashed and checked in: NFC. Borrowed, after a quick check, when
/// it already is (nearly always).
pub fn normalized(password: &str) -> Cow<'_, str> {
    match is_nfc_quick(password.chars()) {
        IsNormalized::Yes => Cow::Borrowed(password),
        _ => {
            let nfc: String = password.nfc().collect();
            if nfc == password {
                Cow::Borrowed(password)
            } else {
                Cow::Owned(nfc)
            }
        }
    }
}

/// Hashes a password's NFC form on the calling thread (for the CLI, or inside
/// `spawn_blocking`).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(normalized(password).as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// Argon2's working memory is allocated with at least this capacity (33 MiB), above glibc's
/// largest dynamic mmap threshold (32 MiB). So each [`WorkingMemory`] is its own mapping,
/// given back to the system when it is dropped, instead of being kept by the allocator of
/// whichever blocking thread ran the hash (which held ~19 MiB per thread and let a login
/// flood grow the process to hundreds of MiB). Only the blocks Argon2 uses are ever
/// touched, so the unused capacity costs no memory.
const MEMORY_CAPACITY_BLOCKS: usize = 33 * 1024;

/// Argon2's working memory for a verification (19 MiB once used).
///
/// Mapping it afresh costs a page fault per 4 KiB page, a fifth of a verification's time,
/// so the [`Hasher`] hands it from one verification to the next while sign-ins are queued,
/// and lets it go when none are. It needs no clearing between uses: Argon2's first pass
/// writes every block before any block is read.
pub struct WorkingMemory(Vec<Block>);

impl Default for WorkingMemory {
    fn default() -> WorkingMemory {
        WorkingMemory(Vec::with_capacity(MEMORY_CAPACITY_BLOCKS))
    }
}

/// Checks exactly these characters (no normalisation: see [`Hasher::check`]) against a PHC
/// string, in `memory`; a malformed stored hash never matches.
///
/// This is `PasswordVerifier::verify_password` with the working memory provided by the
/// caller: the same algorithm, version, parameters and salt read from the PHC string, and a
/// constant-time comparison of the output.
pub fn verify_blocking(password: &str, phc: &str, memory: &mut WorkingMemory) -> bool {
    match verify_in(password, phc, memory) {
        Ok(matched) => matched,
        Err(e) => {
            log::error!("a stored password hash is unusable ({e}); treating it as a mismatch");
            false
        }
    }
}

fn verify_in(password: &str, phc: &str, memory: &mut WorkingMemory) -> Result<bool, String> {
    let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let expected = parsed.hash.ok_or("no hash in the PHC string")?;
    let salt = parsed.salt.ok_or("no salt in the PHC string")?;
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;

    // Touches only blocks not used before (none, when reused for the same parameters).
    let blocks = params.block_count();
    if memory.0.len() < blocks {
        memory.0.resize(blocks, Block::default());
    }
    let blocks = memory.0.get_mut(..blocks).ok_or("working memory too small")?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        .map_err(|e| e.to_string())?;
    Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes are queued: the caller should answer 503 and try again later.
    #[error("too many sign-ins at once")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Runs hashes on the blocking pool, at most `permits` at a time, with at most `queue`
/// callers waiting; counts verifications so tests can prove an unknown user costs one.
pub struct Hasher {
    permits: Arc<Semaphore>,
    queue_len: usize,
    queue: Arc<Mutex<Queue>>,
    verifies: AtomicU64,
    /// Verifications that ran in memory kept from the one before.
    reuses: AtomicU64,
    /// A real hash of a random password, verified against when the user is unknown.
    dummy: String,
}

/// Who waits for a hash permit, and working memory kept for them.
///
/// A verification that ends while others wait leaves its memory here for the next one
/// (never more pieces than there are waiters); when nobody waits it lets its memory go, and
/// a waiter that gives up takes the pieces kept for it along. So memory is reused through a
/// flood and nothing beyond the running hashes is held once the queue is empty.
#[derive(Default)]
struct Queue {
    waiting: usize,
    spare: Vec<WorkingMemory>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Nothing panics while holding the lock; if something ever did, the counts are still whole.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hasher {
    pub fn new(permits: usize, queue: usize) -> Result<Hasher, HashError> {
        let random: [u8; 16] = rand::random();
        let dummy = hash_blocking(&format!("{random:x?}"))?;
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            queue_len: queue,
            queue: Arc::default(),
            verifies: AtomicU64::new(0),
            reuses: AtomicU64::new(0),
            dummy,
        })
    }

    /// How many verifications have run (real or dummy).
    pub fn verify_calls(&self) -> u64 {
        self.verifies.load(Ordering::Relaxed)
    }

    /// Password checks waiting for a slot now.
    pub fn queue_depth(&self) -> usize {
        lock(&self.queue).waiting
    }

    /// Whether a hash asked for now would be turned away (every slot busy, the queue full).
    /// A cheap early answer for callers that would otherwise do work first; the queue itself
    /// stays the authority.
    pub fn is_saturated(&self) -> bool {
        self.permits.available_permits() == 0 && lock(&self.queue).waiting >= self.queue_len
    }

    async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Counted while waiting, and uncounted on drop: a client that gives up
                // (its request future is dropped mid-wait) must not keep a queue place.
                let mut place = QueuePlace::take(&self.queue, self.queue_len).ok_or(HashError::Busy)?;
                let waited = std::time::Instant::now();
                let permit = Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| HashError::Failed("hasher closed".into()))?;
                crate::metrics::get().hash_wait.observe(waited.elapsed().as_secs_f64());
                place.served = true;
                permit
            }
        };
        // The permit moves into the blocking task: it is held until the hash is done even
        // if the request that asked for it has gone away.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Whether `password` matches `phc` in either form [`Hasher::check`] tries.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        Ok(self.check(password, phc).await? != PasswordMatch::No)
    }

    /// Checks `password`'s NFC form against `phc`; with no hash (unknown user, or an account
    /// without a password) it verifies against the dummy hash so the answer costs the same.
    ///
    /// When that fails and the password as typed is not NFC, it checks it as typed too (a
    /// hash made before passwords were normalised): two verifications, but only for such
    /// passwords, and for the dummy hash alike, so the cost still says nothing of whether
    /// the account exists.
    pub async fn check(&self, password: String, phc: Option<String>) -> Result<PasswordMatch, HashError> {
        let (phc, real) = match phc {
            Some(phc) => (phc, true),
            None => (self.dummy.clone(), false),
        };
        let (nfc, typed) = match normalized(&password) {
            Cow::Borrowed(_) => (password, None),
            Cow::Owned(nfc) => (nfc, Some(password)),
        };
        let queue = Arc::clone(&self.queue);
        let (matched, runs, reused) = self
            .run(move || {
                let kept = lock(&queue).spare.pop();
                let reused = kept.is_some();
                let mut memory = kept.unwrap_or_default();
                let mut runs = 1;
                let mut matched = verify_blocking(&nfc, &phc, &mut memory).then_some(PasswordMatch::Yes);
                if let (None, Some(typed)) = (matched, &typed) {
                    runs += 1;
                    matched = verify_blocking(typed, &phc, &mut memory).then_some(PasswordMatch::AsTyped);
                }
                let mut queue = lock(&queue);
                if queue.spare.len() < queue.waiting {
                    queue.spare.push(memory);
                } else {
                    drop(queue);
                    drop(memory);
                }
                (matched.unwrap_or(PasswordMatch::No), runs, reused)
            })
            .await?;
        self.verifies.fetch_add(runs, Ordering::Relaxed);
        if reused {
            self.reuses.fetch_add(1, Ordering::Relaxed);
        }
        Ok(if real { matched } else { PasswordMatch::No })
    }
}

/// How a password matched its stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMatch {
    No,
    /// In NFC, as every hash is made now.
    Yes,
    /// Only as typed, not NFC: a hash from before normalisation, to be replaced.
    AsTyped,
}

/// A place in the hash queue, given back when dropped.
struct QueuePlace<'a> {
    queue: &'a Mutex<Queue>,
    /// Whether the waiter got its permit (and so may use the memory kept for it).
    served: bool,
}

impl<'a> QueuePlace<'a> {
    fn take(queue: &'a Mutex<Queue>, queue_len: usize) -> Option<QueuePlace<'a>> {
        let mut state = lock(queue);
        if state.waiting >= queue_len {
            return None;
        }
        state.waiting += 1;
        Some(QueuePlace { queue, served: false })
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        let mut state = lock(self.queue);
        state.waiting -= 1;
        // A waiter that gave up lets go of the memory kept for it (unmapped after the lock).
        let unwanted = if self.served {
            Vec::new()
        } else {
            let keep = state.spare.len().min(state.waiting);
            state.spare.split_off(keep)
        };
        drop(state);
        drop(unwanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password_and_uses_argon2id() {
        let hasher = Hasher::new(1, 4).unwrap();
        let phc = hasher.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse".into(), Some(phc.clone())).await.unwrap());
        assert!(!hasher.verify("Correct horse".into(), Some(phc)).await.unwrap());
        assert_eq!(hasher.verify_calls(), 2);
    }

    /// "Crème brûlée à la café", composed (NFC) and decomposed (NFD).
    const NFC: &str = "Cr\u{e8}me br\u{fb}l\u{e9}e \u{e0} la caf\u{e9}";
    const NFD: &str = "Cre\u{300}me bru\u{302}le\u{301}e a\u{300} la cafe\u{301}";

    /// A hash of exactly these bytes, as the portal made before it normalised passwords.
    fn hash_as_typed(password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(password.as_bytes(), &salt).unwrap().to_string()
    }

    #[test]
    fn the_two_forms_differ_and_normalise_to_one() {
        assert_ne!(NFC, NFD);
        assert_eq!(normalized(NFD), NFC);
        assert!(matches!(normalized(NFC), Cow::Borrowed(_)));
        assert!(matches!(normalized("correct horse"), Cow::Borrowed(_)));
    }

    #[tokio::test]
    async fn a_password_set_in_one_normal_form_matches_typed_in_the_other() {
        let hasher = Hasher::new(1, 4).unwrap();
        for (set, typed) in [(NFC, NFD), (NFD, NFC), (NFC, NFC), (NFD, NFD)] {
            let phc = hasher.hash(set.into()).await.unwrap();
            assert_eq!(hasher.check(typed.into(), Some(phc)).await.unwrap(), PasswordMatch::Yes, "{typed:?}");
        }
    }

    #[tokio::test]
    async fn an_old_hash_of_a_decomposed_password_matches_it_as_typed_only() {
        let hasher = Hasher::new(1, 4).unwrap();
        let old = hash_as_typed(NFD);
        assert_eq!(hasher.check(NFD.into(), Some(old.clone())).await.unwrap(), PasswordMatch::AsTyped);
        assert_eq!(hasher.verify_calls(), 2, "the NFC form first, then as typed");
        assert_eq!(hasher.check(NFC.into(), Some(old)).await.unwrap(), PasswordMatch::No);
        assert_eq!(hasher.verify_calls(), 3, "an NFC password is checked once");
    }

    #[tokio::test]
    async fn only_a_password_that_is_not_nfc_costs_a_second_verification_known_user_or_not() {
        let hasher = Hasher::new(1, 4).unwrap();
        let phc = hasher.hash("correct horse".into()).await.unwrap();
        let costs = |before: u64| hasher.verify_calls() - before;
        let mut before = hasher.verify_calls();
        assert_eq!(hasher.check("wrong horse".into(), Some(phc.clone())).await.unwrap(), PasswordMatch::No);
        assert_eq!(costs(before), 1);
        before = hasher.verify_calls();
        assert_eq!(hasher.check(NFC.into(), Some(phc.clone())).await.unwrap(), PasswordMatch::No);
        assert_eq!(costs(before), 1);
        for stored in [Some(phc), None] {
            before = hasher.verify_calls();
            assert_eq!(hasher.check(NFD.into(), stored).await.unwrap(), PasswordMatch::No);
            assert_eq!(costs(before), 2, "the same for an unknown user (the dummy hash)");
        }
    }

    #[tokio::test]
    async fn an_unknown_user_costs_one_verify_and_never_matches() {
        let hasher = Hasher::new(1, 4).unwrap();
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
        assert_eq!(hasher.verify_calls(), 1);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_a_mismatch_not_a_panic() {
        let hasher = Hasher::new(1, 4).unwrap();
        assert!(!hasher.verify("x".into(), Some("not a hash".into())).await.unwrap());
    }

    #[test]
    fn our_verification_agrees_with_the_crate_on_its_own_hashes() {
        let check = |password: &str, phc: &str| verify_blocking(password, phc, &mut WorkingMemory::default());
        let phc = hash_blocking("correct horse").unwrap();
        assert!(check("correct horse", &phc));
        assert!(!check("correct horsf", &phc));
        assert!(!check("", &phc));
        // Other parameters and variants in stored hashes are honoured, as the crate does.
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(8192, 3, 2, Some(24)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"pw in another format", &salt)
            .unwrap()
            .to_string();
        assert!(check("pw in another format", &other), "{other}");
        assert!(!check("pw in another formaT", &other));
        let mut tampered = phc.clone();
        tampered.pop();
        tampered.push(if phc.ends_with('A') { 'B' } else { 'A' });
        assert!(!check("correct horse", &tampered));
    }

    #[test]
    fn reused_working_memory_gives_the_same_answers_whatever_it_held() {
        let phc = hash_blocking("correct horse").unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 2, 1, None).unwrap())
            .hash_password(b"smaller", &salt)
            .unwrap()
            .to_string();
        let mut memory = WorkingMemory::default();
        // Small, then large (the memory grows), then small again in memory left dirty by
        // the large one, then the large one again: each answer as from fresh memory.
        for _ in 0..2 {
            assert!(verify_blocking("smaller", &small, &mut memory));
            assert!(!verify_blocking("smallest", &small, &mut memory));
            assert!(!verify_blocking("correct horsf", &phc, &mut memory));
            assert!(verify_blocking("correct horse", &phc, &mut memory));
        }
        assert_eq!(memory.0.len(), 19_456, "one piece of memory, grown to the larger need");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_frees_its_queue_place() {
        let hasher = Arc::new(Hasher::new(1, 1).unwrap());
        let held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.verify("x".into(), None).await }
        });
        while lock(&hasher.queue).waiting == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(lock(&hasher.queue).waiting, 0, "the aborted waiter left the queue");
        drop(held);
        assert!(hasher.verify("x".into(), None).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let hasher = Arc::new(Hasher::new(1, 0).unwrap());
        // Hold the only permit so the next caller would have to queue, and the queue is 0.
        let held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        assert!(hasher.is_saturated());
        let err = hasher.verify("x".into(), None).await.unwrap_err();
        assert!(matches!(err, HashError::Busy));
        assert_eq!(hasher.verify_calls(), 0, "a turned-away verification is not counted");
        drop(held);
        assert!(!hasher.is_saturated());
        assert!(hasher.verify("x".into(), None).await.is_ok());
    }

    /// Waits (on a current-thread runtime) until `n` callers are queued for a permit.
    async fn until_waiting(hasher: &Hasher, n: usize) {
        while lock(&hasher.queue).waiting != n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_lone_verification_keeps_no_memory() {
        let hasher = Hasher::new(1, 4).unwrap();
        assert!(!hasher.verify("x".into(), None).await.unwrap());
        assert!(!hasher.verify("x".into(), None).await.unwrap());
        assert_eq!(hasher.reuses.load(Ordering::Relaxed), 0);
        assert!(lock(&hasher.queue).spare.is_empty());
    }

    #[tokio::test]
    async fn queued_verifications_reuse_memory_and_the_last_lets_it_go() {
        let hasher = Arc::new(Hasher::new(1, 4).unwrap());
        let held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        let spawn_verify = |password: &'static str| {
            let hasher = Arc::clone(&hasher);
            tokio::spawn(async move { hasher.verify(password.into(), None).await })
        };
        let first = spawn_verify("a");
        until_waiting(&hasher, 1).await;
        let second = spawn_verify("b");
        until_waiting(&hasher, 2).await;
        drop(held);
        assert!(!first.await.unwrap().unwrap());
        assert!(!second.await.unwrap().unwrap());
        assert_eq!(hasher.verify_calls(), 2);
        assert_eq!(hasher.reuses.load(Ordering::Relaxed), 1, "the second ran in the first one's memory");
        assert!(lock(&hasher.queue).spare.is_empty(), "nobody waits, so nothing is kept");
        assert_eq!(lock(&hasher.queue).waiting, 0);
    }

    #[tokio::test]
    async fn memory_kept_for_a_waiter_that_gives_up_is_let_go() {
        let hasher = Arc::new(Hasher::new(1, 4).unwrap());
        let held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        let first = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.verify("a".into(), None).await }
        });
        until_waiting(&hasher, 1).await;
        // Next in line for the permit after `first` (the semaphore is FIFO), outside the queue
        // count, so the permit never reaches the waiter below.
        let cutter = tokio::spawn(Arc::clone(&hasher.permits).acquire_owned());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let giving_up = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.verify("b".into(), None).await }
        });
        until_waiting(&hasher, 2).await;
        drop(held);
        assert!(!first.await.unwrap().unwrap());
        let cutter = cutter.await.unwrap().unwrap();
        assert_eq!(lock(&hasher.queue).spare.len(), 1, "kept for the one still waiting");
        giving_up.abort();
        let _ = giving_up.await;
        assert_eq!(lock(&hasher.queue).waiting, 0);
        assert!(lock(&hasher.queue).spare.is_empty(), "let go with the waiter it was kept for");
        drop(cutter);
    }
}
