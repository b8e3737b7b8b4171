//! Logins: TLS required or not, then loopback trust or SCRAM-SHA-256(-PLUS) against stored
//! verifiers ([`super::scram`]), a session slot taken for each one; and the FATAL answer to a
//! socket refused before it logs in.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::conn::ConnState;
use super::errors;
use super::scram;
use super::settings::PG_VERSION;

/// How logins are checked, shared by all connections.
#[derive(Clone)]
pub struct LoginPolicy {
    pub trust: bool,
    pub require_tls: bool,
    /// tls-server-end-point data of the server certificate, when TLS is configured.
    pub certificate_binding: Option<Arc<Vec<u8>>>,
    /// Key of the mock verifiers unknown users meet.
    pub mock_secret: Arc<Vec<u8>>,
}

pub fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = PG_VERSION.to_string();
    p.is_superuser = false;
    p.search_path = "\"$user\", public".to_string();
    p.time_zone = "UTC".to_string();
    p.date_style = "ISO, MDY".to_string();
    p
}

/// Gives each connection a backend key and remembers it for cancel requests.
pub struct KeyGenerator {
    pub conn: Arc<ConnState>,
}

impl PidSecretKeyGenerator for KeyGenerator {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, pgwire::messages::startup::SecretKey) {
        let (pid, key) = RandomPidSecretKeyGenerator::default().generate(client);
        self.conn
            .shared
            .register_cancel_key(pid, key.to_bytes().to_vec(), &self.conn);
        (pid, key)
    }
}

/// Where a login stands.
pub enum Sasl {
    Initial,
    /// AuthenticationSASL sent, waiting for the client-first message.
    Offered {
        plus: bool,
    },
    /// Server-first sent, waiting for the client-final message.
    Challenged {
        user: String,
        exchange: Box<scram::Exchange>,
    },
}

/// Logins: TLS required or not, then trust (loopback) or SCRAM against stored verifiers.
/// A login is admitted only into a free session slot (`max_connections`).
pub struct Startup {
    pub conn: Arc<ConnState>,
    pub params: Arc<DefaultServerParameterProvider>,
    pub keys: Arc<KeyGenerator>,
    pub policy: LoginPolicy,
    pub state: tokio::sync::Mutex<Sasl>,
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        "FATAL".to_string(),
        code.to_string(),
        message.into(),
    )))
}

impl Startup {
    fn refuse_login(&self, user: &str, why: &str) -> PgWireError {
        tracing::warn!(conn = self.conn.id, user, "login refused: {why}");
        fatal(
            errors::INVALID_PASSWORD,
            format!("password authentication failed for user \"{user}\""),
        )
    }

    async fn admit<C>(&self, client: &mut C, user: &str, auth: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !self.conn.take_session_slot() {
            tracing::warn!(
                conn = self.conn.id,
                user,
                "login refused: too many connections"
            );
            return Err(fatal(
                errors::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
        }
        self.conn.set_identity(user);
        let (pid, key) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, key);
        pgwire::api::auth::finish_authentication(client, self.params.as_ref()).await?;
        tracing::info!(
            conn = self.conn.id,
            user,
            auth,
            tls = client.is_secure(),
            "connected"
        );
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::messages::startup::Authentication;
        let mut state = self.state.lock().await;
        let current = std::mem::replace(&mut *state, Sasl::Initial);
        match (message, current) {
            (PgWireFrontendMessage::Startup(ref startup), Sasl::Initial) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                let user = client
                    .metadata()
                    .get("user")
                    .cloned()
                    .ok_or(PgWireError::UserNameRequired)?;
                if self.policy.require_tls && !client.is_secure() {
                    tracing::warn!(conn = self.conn.id, user, "login refused: no TLS");
                    return Err(fatal(
                        errors::INVALID_AUTHORIZATION,
                        "this server requires TLS: connect with sslmode=require",
                    ));
                }
                if self.policy.trust {
                    return self.admit(client, &user, "trust").await;
                }
                let plus = client.is_secure() && self.policy.certificate_binding.is_some();
                let mut mechanisms = Vec::new();
                if plus {
                    mechanisms.push(scram::SCRAM_SHA_256_PLUS.to_string());
                }
                mechanisms.push(scram::SCRAM_SHA_256.to_string());
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        mechanisms,
                    )))
                    .await?;
                *state = Sasl::Offered { plus };
                Ok(())
            }
            (PgWireFrontendMessage::PasswordMessageFamily(msg), Sasl::Offered { plus }) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let initial = msg.into_sasl_initial_response()?;
                let data = initial.data.as_deref().unwrap_or_default();
                let first = scram::parse_client_first(data)
                    .map_err(|e| self.refuse_login(&user, &e.to_string()))?;
                let binding: &[u8] = match (initial.auth_method.as_str(), &first.binding) {
                    (scram::SCRAM_SHA_256_PLUS, scram::Binding::Bound(kind))
                        if plus && kind == scram::TLS_SERVER_END_POINT =>
                    {
                        self.policy
                            .certificate_binding
                            .as_deref()
                            .map(Vec::as_slice)
                            .unwrap_or_default()
                    }
                    (scram::SCRAM_SHA_256, scram::Binding::None) => &[],
                    (scram::SCRAM_SHA_256, scram::Binding::ClientCould) if !plus => &[],
                    (method, b) => {
                        return Err(self.refuse_login(
                            &user,
                            &format!("mechanism {method} with channel binding {b:?} not allowed"),
                        ));
                    }
                };
                let known = self
                    .conn
                    .shared
                    .config
                    .user(&user)
                    .and_then(|u| u.password.as_deref())
                    .and_then(|p| super::config::StoredPassword::parse(p).ok())
                    .map(|p| p.verifier().clone());
                let (verifier, is_known) = match known {
                    Some(v) => (v, true),
                    None => (scram::mock_verifier(&self.policy.mock_secret, &user), false),
                };
                let (exchange, server_first) = scram::Exchange::start(
                    &first,
                    verifier,
                    is_known,
                    &scram::random_nonce(),
                    binding,
                );
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(server_first.into_bytes().into()),
                    ))
                    .await?;
                *state = Sasl::Challenged {
                    user,
                    exchange: Box::new(exchange),
                };
                Ok(())
            }
            (
                PgWireFrontendMessage::PasswordMessageFamily(msg),
                Sasl::Challenged { user, exchange },
            ) => {
                let response = msg.into_sasl_response()?;
                let server_final = exchange
                    .finish(&response.data)
                    .map_err(|e| self.refuse_login(&user, &e.to_string()))?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into_bytes().into()),
                    ))
                    .await?;
                self.admit(client, &user, "scram").await
            }
            _ => Err(fatal("08P01", "unexpected message during authentication")),
        }
    }
}

/// Sends a FATAL error to a client that is refused before startup finishes, then closes.
pub async fn refuse_connection(mut socket: tokio::net::TcpStream, code: &str, message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read_packet = async |socket: &mut tokio::net::TcpStream| -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        socket.read_exact(&mut len).await.ok()?;
        let n = u32::from_be_bytes(len) as usize;
        if !(8..=10_000).contains(&n) {
            return None;
        }
        let mut body = vec![0u8; n - 4];
        socket.read_exact(&mut body).await.ok()?;
        Some(body)
    };
    let work = async {
        let mut first = read_packet(&mut socket).await?;
        // SSLRequest / GSSENCRequest: answer "no", then read the real startup packet.
        while first.len() == 4
            && matches!(
                u32::from_be_bytes([first[0], first[1], first[2], first[3]]),
                80877103 | 80877104
            )
        {
            socket.write_all(b"N").await.ok()?;
            first = read_packet(&mut socket).await?;
        }
        let mut body = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', code),
            (b'M', message),
        ] {
            body.push(tag);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(&body);
        socket.write_all(&msg).await.ok()?;
        socket.flush().await.ok()
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), work).await;
}
