//! Who is calling. Deployed, API Gateway's JWT authorizer has verified the token and intake
//! reads its `sub` claim from the request context. Locally (`serve`), intake verifies a JWT
//! itself, signed with a key kept in the data dir, so local auth behaves like the deployed one:
//! a missing, expired or tampered token is a 401.

use lambda_http::request::RequestContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::app::intake::IntakeError;
use shared::domain::ids::UserId;
use shared::domain::intent::{is_reserved_user, RESERVED_USER_PREFIX};
use std::path::Path;

/// The claim that names the caller in a JWT / Cognito authorizer. An HTTP API's JWT authorizer
/// verifies the token and passes its claims to the integration as
/// `requestContext.authorizer.jwt.claims`
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html>).
pub const USER_CLAIM: &str = "sub";

/// The issuer of locally signed tokens (checked on the way in).
pub const LOCAL_ISSUER: &str = "batch-orchestrator-local";

/// How the router learns the caller.
#[derive(Clone)]
pub enum Auth {
    /// API Gateway verified the token; the claims are in the Lambda request context.
    Authorizer,
    /// `serve`: a bearer JWT verified here with a local HS256 key.
    LocalJwt(std::sync::Arc<LocalKey>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Authorizer => f.write_str("Authorizer"),
            Self::LocalJwt(_) => f.write_str("LocalJwt"),
        }
    }
}

impl Auth {
    /// The caller of a request, or a 401 naming what is missing. The service's own identities
    /// (`system.…`, the pool's) are never a caller.
    pub fn caller(&self, parts: &axum::http::request::Parts) -> Result<UserId, IntakeError> {
        let user = self.identity(parts)?;
        if is_reserved_user(&user) {
            return Err(IntakeError::Unauthorized(format!(
                "`{user}` is an identity the service keeps for itself ({RESERVED_USER_PREFIX}…) and cannot call the API"
            )));
        }
        Ok(user)
    }

    fn identity(&self, parts: &axum::http::request::Parts) -> Result<UserId, IntakeError> {
        match self {
            Self::Authorizer => {
                let context = parts.extensions.get::<RequestContext>();
                user_from_authorizer(context.and_then(RequestContext::authorizer))
            }
            Self::LocalJwt(key) => {
                let header = parts
                    .headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        IntakeError::Unauthorized(
                            "an `Authorization: Bearer` token is required".into(),
                        )
                    })?;
                let token = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                    .ok_or_else(|| {
                        IntakeError::Unauthorized(
                            "the Authorization header must be `Bearer <token>`".into(),
                        )
                    })?;
                key.verify(token.trim())
            }
        }
    }
}

/// The caller's id from an authorizer: JWT claims (HTTP API), or Cognito user-pool claims
/// (REST API, under `claims`), or a Lambda authorizer's context.
pub fn user_from_authorizer(
    auth: Option<&aws_lambda_events::apigw::ApiGatewayRequestAuthorizer>,
) -> Result<UserId, IntakeError> {
    let claim = auth.and_then(|a| {
        a.jwt
            .as_ref()
            .and_then(|j| j.claims.get(USER_CLAIM).cloned())
            .or_else(|| {
                a.fields
                    .get("claims")
                    .and_then(|c| c.get(USER_CLAIM))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| {
                a.fields
                    .get(USER_CLAIM)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
    });
    let raw = claim.ok_or_else(|| {
        IntakeError::Unauthorized(format!("no `{USER_CLAIM}` claim from the authorizer"))
    })?;
    UserId::parse(&raw).map_err(|e| {
        IntakeError::Unauthorized(format!(
            "the `{USER_CLAIM}` claim is not a valid user id: {e}"
        ))
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: u64,
    exp: u64,
    /// Not before (RFC 7519 section 4.1.5): honoured when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    /// `operator` on an operator's token (`token --operator`): the operator page's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// The `role` claim of an operator's token.
pub const OPERATOR_ROLE: &str = "operator";

/// Clock skew a token's `exp` and `nbf` are allowed.
pub const LEEWAY_SECS: u64 = 5;

/// The local signing key: 32 random bytes in `{data_dir}/jwt.key`, made on first use.
pub struct LocalKey {
    secret: Vec<u8>,
}

impl LocalKey {
    /// Reads the key from `data_dir`, making it (mode 0600) the first time. Two processes
    /// starting at once (`serve` and `token`) agree on one key: the file is created
    /// exclusively, written whole to a temporary name first, and the loser reads the winner's.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join("jwt.key");
        if path.exists() {
            return Self::load(&path);
        }
        shared::adapters::data_dir::private_dir(data_dir)?;
        let secret: Vec<u8> = (0..2)
            .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
            .collect();
        let tmp = data_dir.join(format!("jwt.key.{}", uuid::Uuid::new_v4()));
        write_private(&tmp, &secret)?;
        // A hard link fails if the key exists: the first complete key wins, never a torn one.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Self { secret }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(&path),
            Err(e) => Err(e),
        }
    }

    /// An existing key, only if it is fit to sign with: at least 32 bytes (HS256's key should
    /// be as long as its hash), and readable by its owner alone.
    fn load(path: &Path) -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(std::io::Error::other(format!(
                    "{} has mode {mode:o}: others may read the signing key; chmod 600 it, or delete it to make a new one",
                    path.display()
                )));
            }
        }
        let secret = std::fs::read(path)?;
        if secret.len() < 32 {
            return Err(std::io::Error::other(format!(
                "{} holds {} bytes; a signing key needs at least 32: delete it to make a new one",
                path.display(),
                secret.len()
            )));
        }
        Ok(Self { secret })
    }

    /// A token for `user`, valid for `ttl_secs`.
    pub fn sign(&self, user: &UserId, ttl_secs: u64) -> Result<String, IntakeError> {
        if is_reserved_user(user) {
            return Err(IntakeError::invalid(
                "user",
                format!("{RESERVED_USER_PREFIX}… is reserved for the service's own identities"),
            ));
        }
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iss: LOCAL_ISSUER.into(),
            iat: now,
            exp: now + ttl_secs,
            nbf: None,
            role: None,
        };
        self.encode(&claims)
            .map_err(|e| IntakeError::Unauthorized(format!("could not sign a token: {e}")))
    }

    /// An operator's token, valid for `ttl_secs`: it opens the operator page (`/ops`), whose
    /// data is every user's.
    pub fn sign_operator(&self, name: &UserId, ttl_secs: u64) -> Result<String, IntakeError> {
        let user_token = self.sign(name, ttl_secs)?;
        let mut claims = self.claims(&user_token)?;
        claims.role = Some(OPERATOR_ROLE.into());
        self.encode(&claims)
            .map_err(|e| IntakeError::Unauthorized(format!("could not sign a token: {e}")))
    }

    /// The operator named by a valid operator's token. A valid user's token is a 403
    /// (`Forbidden`), anything else a 401.
    pub fn verify_operator(&self, token: &str) -> Result<UserId, IntakeError> {
        let claims = self.claims(token)?;
        if claims.role.as_deref() != Some(OPERATOR_ROLE) {
            return Err(IntakeError::Forbidden {
                field: "authorization".into(),
                message: "the operator page needs an operator's token (`token --operator`)".into(),
            });
        }
        let operator = UserId::parse(&claims.sub).map_err(|e| {
            IntakeError::Unauthorized(format!("the token's `sub` is not a valid user id: {e}"))
        })?;
        if is_reserved_user(&operator) {
            return Err(IntakeError::Unauthorized(format!(
                "{RESERVED_USER_PREFIX}… is reserved for the service's own identities"
            )));
        }
        Ok(operator)
    }

    fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        crate::hs256::install();
        let key = jsonwebtoken::EncodingKey::from_secret(&self.secret)?;
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jsonwebtoken::encode(&header, claims, &key)
    }

    /// A valid token's claims: HS256 only, signature, `iss`, `exp` and (when present) `nbf`
    /// checked, with at most [`LEEWAY_SECS`] of clock skew (jsonwebtoken's default is 60 s).
    fn claims(&self, token: &str) -> Result<Claims, IntakeError> {
        crate::hs256::install();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[LOCAL_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        jsonwebtoken::DecodingKey::from_secret(&self.secret)
            .and_then(|key| jsonwebtoken::decode::<Claims>(token, &key, &validation))
            .map(|data| data.claims)
            .map_err(|e| IntakeError::Unauthorized(format!("the bearer token is not valid ({e})")))
    }

    /// The caller named by a valid user's token: HS256 only, signature, `exp`, `nbf` and `iss`
    /// checked. An operator's token never acts as a user (it reads every user's night on
    /// `/ops`; it must not also post or cancel as its holder).
    pub fn verify(&self, token: &str) -> Result<UserId, IntakeError> {
        let claims = self.claims(token)?;
        if claims.role.is_some() {
            return Err(IntakeError::Unauthorized(
                "an operator's token opens the operator page only; use a user's token (`token --user`)".into(),
            ));
        }
        UserId::parse(&claims.sub).map_err(|e| {
            IntakeError::Unauthorized(format!("the token's `sub` is not a valid user id: {e}"))
        })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_loose_key_is_refused_and_a_reserved_user_gets_no_token() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("jwt.key"), b"short").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let key = dir.path().join("jwt.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            let Err(err) = LocalKey::load_or_create(dir.path()) else {
                panic!("a 5-byte key was used");
            };
            assert!(err.to_string().contains("at least 32"), "{err}");
            std::fs::write(&key, [7u8; 32]).expect("write");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let Err(err) = LocalKey::load_or_create(dir.path()) else {
                panic!("a key others may read was used");
            };
            assert!(err.to_string().contains("chmod 600"), "{err}");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let key = LocalKey::load_or_create(dir.path()).expect("a fit key");
        let pool = UserId::parse("system.pool").expect("user");
        assert!(
            key.sign(&pool, 60).is_err(),
            "no token for the pool's identity"
        );
    }

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let dir = tempfile::tempdir().expect("dir");
        let key = LocalKey::load_or_create(dir.path()).expect("key");
        let user = UserId::parse("u1").expect("user");
        let token = key.sign(&user, 60).expect("token");
        assert_eq!(key.verify(&token).expect("valid"), user);
        // The same key is read back from the data dir.
        let again = LocalKey::load_or_create(dir.path()).expect("key");
        assert_eq!(again.verify(&token).expect("valid"), user);

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sub":"u2","iss":"batch-orchestrator-local","iat":0,"exp":99999999999}"#,
        );
        let tampered = parts.join(".");
        assert!(matches!(
            key.verify(&tampered),
            Err(IntakeError::Unauthorized(_))
        ));
        let other =
            LocalKey::load_or_create(tempfile::tempdir().expect("dir").path()).expect("key");
        assert!(matches!(
            other.verify(&token),
            Err(IntakeError::Unauthorized(_))
        ));
    }

    #[test]
    fn processes_making_the_key_at_once_agree_on_one() {
        let dir = tempfile::tempdir().expect("dir");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let makers: Vec<_> = (0..8)
                .map(|_| s.spawn(|| LocalKey::load_or_create(dir.path()).expect("key").secret))
                .collect();
            makers
                .into_iter()
                .map(|m| m.join().expect("thread"))
                .collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0] && k.len() == 32));
        let files = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(files, 1, "no temporary key left behind");
    }

    /// A token of `sub` with `exp`, `nbf` and `role` as given (times relative to now).
    fn token_of(
        key: &LocalKey,
        sub: &str,
        exp: i64,
        nbf: Option<i64>,
        role: Option<&str>,
    ) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = Claims {
            role: role.map(str::to_owned),
            sub: sub.into(),
            iss: LOCAL_ISSUER.into(),
            iat: (now - 60) as u64,
            exp: (now + exp) as u64,
            nbf: nbf.map(|n| (now + n) as u64),
        };
        key.encode(&claims).expect("token")
    }

    #[test]
    fn a_token_past_its_exp_or_before_its_nbf_is_refused_with_at_most_5_s_of_leeway() {
        let dir = tempfile::tempdir().expect("dir");
        let key = LocalKey::load_or_create(dir.path()).expect("key");
        let refused = |t: &str| matches!(key.verify(t), Err(IntakeError::Unauthorized(_)));
        assert!(
            refused(&token_of(&key, "u1", -3600, None, None)),
            "an hour past exp"
        );
        assert!(
            refused(&token_of(&key, "u1", -10, None, None)),
            "10 s past exp"
        );
        assert!(
            !refused(&token_of(&key, "u1", -2, None, None)),
            "2 s of skew pass"
        );
        assert!(
            refused(&token_of(&key, "u1", 600, Some(30), None)),
            "nbf 30 s ahead"
        );
        assert!(
            !refused(&token_of(&key, "u1", 600, Some(-1), None)),
            "nbf passed"
        );
    }

    #[test]
    fn an_operator_token_never_acts_as_a_user_and_no_reserved_identity_operates() {
        let dir = tempfile::tempdir().expect("dir");
        let key = LocalKey::load_or_create(dir.path()).expect("key");
        let op = token_of(&key, "alice", 600, None, Some(OPERATOR_ROLE));
        assert!(matches!(key.verify(&op), Err(IntakeError::Unauthorized(_))));
        assert_eq!(
            key.verify_operator(&op).expect("operator").as_str(),
            "alice"
        );
        let reserved = token_of(&key, "system.pool", 600, None, Some(OPERATOR_ROLE));
        assert!(matches!(
            key.verify_operator(&reserved),
            Err(IntakeError::Unauthorized(_))
        ));
    }
}
