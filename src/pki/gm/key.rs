//! SM2 key pairs (GM/T 0003) and the raw signature primitive with the default
//! distinguishing ID.
//!
//! Private keys go in and out as PKCS#8 (id-ecPublicKey with the SM2 curve
//! 1.2.156.10197.1.301 as parameter, as OpenSSL and GmSSL write them), so a hosted key
//! is sealed at rest with [`crate::pki::keys::seal`] like an OpenSSL key.
//! Signature values are DER `SEQUENCE { r INTEGER, s INTEGER }` (GM/T 0009
//! SM2Signature), the form in certificates and CMS.

use der::asn1::UintRef;
use der::{Decode, Encode, Sequence};
use rand::rngs::OsRng;
use sm2::dsa::signature::{RandomizedSigner, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::zeroize::Zeroizing;
use sm2::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
    SecretDocument,
};
use sm2::{PublicKey, SecretKey};

use super::error::{Sm2Error, Sm2KeyError};
use super::DEFAULT_DISTINGUISHING_ID;

/// An SM2 private key, ready to sign with the default distinguishing ID. Its `Debug`
/// never prints the key; the secret scalar is zeroed on drop.
#[derive(Clone)]
pub struct Sm2PrivateKey {
    secret: SecretKey,
    signing: SigningKey,
}

impl std::fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm2PrivateKey")
            .field(
                "public_key",
                &hex::encode(self.public_key().to_sec1_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl Sm2PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, Sm2KeyError> {
        Self::from_secret(SecretKey::random(&mut OsRng))
    }

    fn from_secret(secret: SecretKey) -> Result<Self, Sm2KeyError> {
        let signing = SigningKey::new(DEFAULT_DISTINGUISHING_ID, &secret)
            .map_err(|_| Sm2KeyError::Pkcs8("the key cannot sign".into()))?;
        Ok(Sm2PrivateKey { secret, signing })
    }

    /// Reads a PKCS#8 `PrivateKeyInfo` (DER) holding an SM2 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Sm2KeyError> {
        let secret =
            SecretKey::from_pkcs8_der(der).map_err(|e| Sm2KeyError::Pkcs8(e.to_string()))?;
        Self::from_secret(secret)
    }

    /// Reads a `-----BEGIN PRIVATE KEY-----` PEM holding an SM2 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Sm2KeyError> {
        let secret =
            SecretKey::from_pkcs8_pem(pem).map_err(|e| Sm2KeyError::Pkcs8(e.to_string()))?;
        Self::from_secret(secret)
    }

    /// The key as PKCS#8 DER, zeroed when dropped: what [`crate::pki::keys::seal`]
    /// encrypts for a hosted key.
    pub fn to_pkcs8_der(&self) -> Result<SecretDocument, Sm2KeyError> {
        self.secret
            .to_pkcs8_der()
            .map_err(|e| Sm2KeyError::Pkcs8(e.to_string()))
    }

    /// The key as a PKCS#8 PEM (`PRIVATE KEY`, LF line endings), zeroed when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Sm2KeyError> {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Sm2KeyError::Pkcs8(e.to_string()))
    }

    /// The public half.
    pub fn public_key(&self) -> Sm2PublicKey {
        Sm2PublicKey {
            verifying: self.signing.verifying_key().clone(),
        }
    }
}

/// An SM2 public key with the default distinguishing ID's Z value computed once.
#[derive(Clone, Debug)]
pub struct Sm2PublicKey {
    verifying: VerifyingKey,
}

impl PartialEq for Sm2PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.verifying.as_affine() == other.verifying.as_affine()
    }
}

impl Eq for Sm2PublicKey {}

impl Sm2PublicKey {
    fn from_public(public: PublicKey) -> Result<Self, Sm2KeyError> {
        let verifying = VerifyingKey::new(DEFAULT_DISTINGUISHING_ID, public)
            .map_err(|_| Sm2KeyError::PublicKey("not usable for verification".into()))?;
        Ok(Sm2PublicKey { verifying })
    }

    /// Reads a SEC1 point (`04 ‖ x ‖ y`, or compressed); rejects points off the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Sm2KeyError> {
        let public = PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| Sm2KeyError::PublicKey("not a point on the SM2 curve".into()))?;
        Self::from_public(public)
    }

    /// The uncompressed SEC1 point, `04 ‖ x ‖ y` (65 bytes).
    pub fn to_sec1_bytes(&self) -> Vec<u8> {
        self.verifying.to_sec1_bytes().into_vec()
    }

    /// Reads a DER SubjectPublicKeyInfo (id-ecPublicKey with the SM2 curve).
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, Sm2KeyError> {
        let public = PublicKey::from_public_key_der(der)
            .map_err(|e| Sm2KeyError::PublicKey(e.to_string()))?;
        Self::from_public(public)
    }

    /// The DER SubjectPublicKeyInfo (id-ecPublicKey with the SM2 curve as parameter).
    pub fn to_public_key_der(&self) -> Result<Vec<u8>, Sm2KeyError> {
        let public = PublicKey::from(&self.verifying);
        Ok(public
            .to_public_key_der()
            .map_err(|e| Sm2KeyError::PublicKey(e.to_string()))?
            .into_vec())
    }
}

/// GM/T 0009 SM2Signature ::= SEQUENCE { R INTEGER, S INTEGER }.
#[derive(Sequence)]
struct SignatureDer<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// The DER form of a signature.
fn signature_to_der(signature: &Signature) -> Result<Vec<u8>, Sm2KeyError> {
    let (r, s) = (signature.r_bytes(), signature.s_bytes());
    Ok(SignatureDer {
        r: UintRef::new(&r)?,
        s: UintRef::new(&s)?,
    }
    .to_der()?)
}

/// Reads a DER signature; r and s must lie in [1, n-1].
fn signature_from_der(der: &[u8]) -> Result<Signature, Sm2Error> {
    let malformed = || Sm2Error::Malformed("the SM2 signature value is not DER (r, s)".into());
    let parsed = SignatureDer::from_der(der).map_err(|_| malformed())?;
    let pad = |int: UintRef<'_>| -> Result<[u8; 32], Sm2Error> {
        let bytes = int.as_bytes();
        let mut out = [0u8; 32];
        let start = out.len().checked_sub(bytes.len()).ok_or_else(malformed)?;
        out[start..].copy_from_slice(bytes);
        Ok(out)
    };
    let (r, s) = (pad(parsed.r)?, pad(parsed.s)?);
    // from_scalars refuses zero and values not below the group order.
    Signature::from_scalars(r, s).map_err(|_| malformed())
}

/// Signs `message` with the default distinguishing ID: the SM2 signature of
/// SM3(Z ‖ message), as DER (r, s). The nonce is RFC 6979's, hedged with fresh
/// randomness, so a weak random source cannot leak the key.
pub fn sm2_sign_raw(key: &Sm2PrivateKey, message: &[u8]) -> Result<Vec<u8>, Sm2KeyError> {
    let signature: Signature = key
        .signing
        .try_sign_with_rng(&mut OsRng, message)
        .map_err(|_| Sm2KeyError::Sign)?;
    signature_to_der(&signature)
}

/// Checks a DER (r, s) SM2 signature of `message` with the default distinguishing ID.
/// [`Sm2Error::Malformed`] when the bytes are not a signature value,
/// [`Sm2Error::BadSignature`] when it does not verify.
pub fn sm2_verify_raw(
    key: &Sm2PublicKey,
    message: &[u8],
    signature_der: &[u8],
) -> Result<(), Sm2Error> {
    let signature = signature_from_der(signature_der)?;
    key.verifying
        .verify(message, &signature)
        .map_err(|_| Sm2Error::BadSignature)
}
