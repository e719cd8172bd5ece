//! Sealing secrets for the store (authenticator-app secrets, mail waiting in the outbox):
//! AES-256-GCM under a key derived from `secret_key`, a random nonce per seal, and what the
//! secret belongs to (a user's id, a message's id) as associated data, so that a sealed
//! secret copied onto another row does not open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The version prefix of what [`Sealer::seal`] writes.
const V1: &str = "v1.";

pub struct Sealer(LessSafeKey);

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Option<Sealer> {
        UnboundKey::new(&AES_256_GCM, key).ok().map(|key| Sealer(LessSafeKey::new(key)))
    }

    /// `v1.` and base64url of the nonce, the ciphertext and the tag.
    pub fn seal(&self, owner: &[u8], plain: &[u8]) -> Option<String> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plain.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(owner), &mut sealed)
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(format!("{V1}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The plain bytes, when `sealed` was sealed for `owner` under this key.
    pub fn open(&self, owner: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(V1)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut rest = rest.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(owner), &mut rest).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_owner_under_its_key() {
        let sealer = Sealer::new(&[7; 32]).unwrap();
        let sealed = sealer.seal(b"1", b"twenty bytes secret!").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("twenty"));
        assert_eq!(sealer.open(b"1", &sealed).unwrap(), b"twenty bytes secret!");
        assert_eq!(sealer.open(b"2", &sealed), None, "another user's row");
        assert_eq!(Sealer::new(&[8; 32]).unwrap().open(b"1", &sealed), None, "another key");
        assert_ne!(
            sealer.seal(b"1", b"same").unwrap(),
            sealer.seal(b"1", b"same").unwrap(),
            "a nonce per seal"
        );
        assert_eq!(sealer.open(b"1", "v1.AAAA"), None);
        assert_eq!(sealer.open(b"1", "garbage"), None);
    }
}
