//! HS256, the one algorithm `serve`'s local tokens use, as `jsonwebtoken`'s crypto provider:
//! HMAC-SHA256 from `hmac-sha256` (which the build has already, through the Standard Webhooks
//! crate), instead of the `rust_crypto` feature, which builds every algorithm (RSA and the
//! elliptic curves: about 15 CPU-seconds of the first build). `jsonwebtoken` still parses,
//! checks the claims and encodes; only the MAC is this file's. Any other algorithm is refused.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// The provider: HS256 only, no JWK support (our tokens carry no key).
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes HS256 `jsonwebtoken`'s provider for the process (idempotent).
pub fn install() {
    let _ = PROVIDER.install_default();
}

/// An HMAC-SHA256 key.
struct Hs256(Vec<u8>);

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac_sha256::HMAC::mac(msg, &self.0).to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = hmac_sha256::HMAC::new(&self.0);
        mac.update(msg);
        // `finalize_verify` compares in constant time.
        let expected: &[u8; 32] = sig
            .as_slice()
            .try_into()
            .map_err(|_| signature::Error::new())?;
        if mac.finalize_verify(expected) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::HS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Hs256(key.as_bytes().to_vec())))
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::HS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Hs256(key.try_get_as_bytes()?.to_vec())))
}

#[cfg(test)]
mod tests {
    /// RFC 7515, Appendix A.1: the HS256 example's key, input and signature.
    #[test]
    fn when_the_rfc_example_is_signed_should_give_its_signature() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = b64
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .expect("key");
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        super::install();
        let signed = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(&key).expect("a key"),
            jsonwebtoken::Algorithm::HS256,
        )
        .expect("signed");
        assert_eq!(signed, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let decoding = jsonwebtoken::DecodingKey::from_secret(&key).expect("a key");
        let ok = jsonwebtoken::crypto::verify(
            &signed,
            input.as_bytes(),
            &decoding,
            jsonwebtoken::Algorithm::HS256,
        );
        assert_eq!(ok.ok(), Some(true));
        let bad = jsonwebtoken::crypto::verify(
            "AAAA",
            input.as_bytes(),
            &decoding,
            jsonwebtoken::Algorithm::HS256,
        );
        assert_ne!(bad.ok(), Some(true), "a wrong signature is refused");
    }
}
