//! Passwords: hashing (Argon2id, the queue in front of it) and the policy new ones must pass.

mod hashing;
mod policy;

pub use self::hashing::{
    hash_blocking, normalized, verify_blocking, HashError, Hasher, PasswordMatch, WorkingMemory,
};
pub use self::policy::{check_policy, PolicyError, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
