//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) against stored verifiers.
//!
//! pgwire's SCRAM needs the SaltedPassword at login, so rebuy stored exactly that, and the
//! string from `rebuy.toml` alone logged in. Here the server holds only what PostgreSQL holds
//! (StoredKey, ServerKey): it recovers the ClientKey from the client's proof and checks that
//! it hashes to StoredKey.
//!
//! - Unknown users get a verifier derived from a server secret and the name, so they meet the
//!   same salt on every attempt and the same work as known ones: neither the salt nor the
//!   timing tells who exists.
//! - With TLS the server offers SCRAM-SHA-256-PLUS (channel binding `tls-server-end-point`,
//!   RFC 5929: the hash of the server's certificate); a client that says it could bind ("y")
//!   while the server offered binding is refused, as that is a downgrade.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac as ring_hmac};

use super::config::StoredPassword;

pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
pub const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = ring_hmac::Key::new(ring_hmac::HMAC_SHA256, key);
    ring_hmac::sign(&key, data).as_ref().to_vec()
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// Why a SCRAM exchange failed. Every variant ends the login with 28P01 (or 08P01 for a
/// malformed message); the text is logged, the client hears only that it failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding: {0}")]
    ChannelBinding(&'static str),
    #[error("wrong proof")]
    WrongProof,
}

/// The gs2 channel-binding flag of a client-first message.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// `n`: the client does not bind.
    None,
    /// `y`: the client could bind but thinks the server cannot.
    ClientCould,
    /// `p=NAME`: the client binds with that type.
    Bound(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientFirst {
    pub binding: Binding,
    /// `n,,` / `y,,` / `p=tls-server-end-point,,`: echoed in the final message's `c=`.
    pub gs2_header: String,
    pub bare: String,
    pub nonce: String,
}

pub fn parse_client_first(data: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = std::str::from_utf8(data).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts
        .next()
        .ok_or(ScramError::Malformed("no client-first-bare"))?;
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(ScramError::Malformed("bad authzid"));
    }
    let binding = match flag {
        "n" => Binding::None,
        "y" => Binding::ClientCould,
        p if p.starts_with("p=") => Binding::Bound(p[2..].to_string()),
        _ => return Err(ScramError::Malformed("bad channel-binding flag")),
    };
    let mut nonce = None;
    for attr in bare.split(',') {
        if let Some(r) = attr.strip_prefix("r=") {
            nonce = Some(r);
        } else if attr.starts_with("m=") {
            return Err(ScramError::Malformed("mandatory extension not supported"));
        }
    }
    let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(ScramError::Malformed("bad nonce"));
    }
    Ok(ClientFirst {
        binding,
        gs2_header: format!("{flag},{authzid},"),
        bare: bare.to_string(),
        nonce: nonce.to_string(),
    })
}

/// One exchange after the server-first message was sent.
#[derive(Debug, Clone)]
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// What `c=` must decode to: the gs2 header, then the channel-binding data if bound.
    expected_binding: Vec<u8>,
    verifier: StoredPassword,
    known: bool,
}

impl Exchange {
    /// Starts the exchange and gives the server-first message. `known` is false for a mock
    /// verifier (unknown user): the exchange then fails at the proof, after the same work.
    pub fn start(
        first: &ClientFirst,
        verifier: StoredPassword,
        known: bool,
        server_nonce: &str,
        binding_data: &[u8],
    ) -> (Exchange, String) {
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&verifier.salt),
            verifier.iterations
        );
        let mut expected_binding = first.gs2_header.as_bytes().to_vec();
        if matches!(first.binding, Binding::Bound(_)) {
            expected_binding.extend_from_slice(binding_data);
        }
        (
            Exchange {
                client_first_bare: first.bare.clone(),
                server_first: server_first.clone(),
                nonce,
                expected_binding,
                verifier,
                known,
            },
            server_first,
        )
    }

    /// Checks the client-final message; gives the server-final message (`v=…`).
    pub fn finish(&self, data: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(data).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                binding = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        let binding = STANDARD
            .decode(binding.ok_or(ScramError::Malformed("no channel binding"))?)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        // Computed whatever the outcome below, so that every failure costs the same.
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter().cycle())
            .map(|(p, s)| p ^ s)
            .collect();
        let proof_ok = proof.len() == client_signature.len()
            && constant_time_eq(&sha256(&client_key), &self.verifier.stored_key);
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        if !constant_time_eq(&binding, &self.expected_binding) {
            return Err(ScramError::ChannelBinding("the binding data do not match"));
        }
        if !(proof_ok && self.known) {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The verifier an unknown user meets: stable for a name under one server secret.
pub fn mock_verifier(secret: &[u8], user: &str) -> StoredPassword {
    let derive = |label: &str| hmac(secret, format!("{label}\0{user}").as_bytes());
    StoredPassword {
        iterations: super::config::SCRAM_ITERATIONS as u32,
        salt: derive("salt")[..16].to_vec(),
        stored_key: derive("stored"),
        server_key: derive("server"),
    }
}

/// tls-server-end-point binding data for a PEM certificate chain: the hash of the first
/// certificate's DER with its signature's hash function, SHA-256 for MD5 and SHA-1
/// (RFC 5929 section 4.1).
pub fn certificate_binding(cert_pem: &[u8]) -> Option<Vec<u8>> {
    let der = rustls_pemfile::certs(&mut &cert_pem[..]).next()?.ok()?;
    let der = der.as_ref();
    // Signature algorithm OIDs (DER content bytes) whose hash is not SHA-256.
    const SHA384: &[&[u8]] = &[
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
    ];
    const SHA512: &[&[u8]] = &[
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
    ];
    let has = |oids: &[&[u8]]| oids.iter().any(|o| der.windows(o.len()).any(|w| w == *o));
    let algorithm = if has(SHA512) {
        &digest::SHA512
    } else if has(SHA384) {
        &digest::SHA384
    } else {
        &digest::SHA256
    };
    Some(digest::digest(algorithm, der).as_ref().to_vec())
}

pub fn random_nonce() -> String {
    STANDARD.encode(rand::random::<[u8; 18]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: the exchange for user "user", password "pencil".
    #[test]
    fn rfc7677_exchange_against_a_stored_verifier() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password("pencil", &salt, 4096);
        let verifier = StoredPassword::from_salted(4096, salt, &salted);
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.binding, Binding::None);
        let (exchange, server_first) = Exchange::start(
            &first,
            verifier.clone(),
            true,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            &[],
        );
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            exchange.finish(client_final.as_bytes()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // A proof made from the stored values (what a leaked config holds) fails.
        let forged = STANDARD.encode(&verifier.stored_key);
        let bad = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={forged}");
        assert_eq!(exchange.finish(bad.as_bytes()), Err(ScramError::WrongProof));
        // The same exchange for an unknown user fails, after the same work.
        let (mock, _) = Exchange::start(
            &first,
            verifier,
            false,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            &[],
        );
        assert_eq!(
            mock.finish(client_final.as_bytes()),
            Err(ScramError::WrongProof)
        );
    }

    #[test]
    fn unknown_users_meet_a_stable_salt() {
        let a = mock_verifier(b"secret", "mallory");
        assert_eq!(a, mock_verifier(b"secret", "mallory"));
        assert_ne!(a.salt, mock_verifier(b"secret", "eve").salt);
        assert_ne!(a.salt, mock_verifier(b"other", "mallory").salt);
    }

    #[test]
    fn channel_binding_data_must_match() {
        let verifier = StoredPassword::hash("pw");
        let first = parse_client_first(b"p=tls-server-end-point,,n=,r=abc").unwrap();
        assert_eq!(first.binding, Binding::Bound(TLS_SERVER_END_POINT.into()));
        let (exchange, _) = Exchange::start(&first, verifier, true, "xyz", b"CERTHASH");
        let wrong = format!(
            "c={},r=abcxyz,p={}",
            STANDARD.encode(b"p=tls-server-end-point,,OTHER"),
            STANDARD.encode([0u8; 32])
        );
        assert!(matches!(
            exchange.finish(wrong.as_bytes()),
            Err(ScramError::ChannelBinding(_))
        ));
        assert!(parse_client_first(b"x,,n=,r=abc").is_err());
        assert!(parse_client_first(b"n,,n=,r=a,b").is_ok());
    }
}
