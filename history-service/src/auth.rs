//! The public port's credentials and what each caller may read.
//!
//! The interceptor only establishes *who* calls (a user from a verified JWT, or
//! the operator); the handlers then decide *what* that caller may see: a user
//! reads the DMs they are a party to, the rooms they are a member of (asked of
//! user-service, the owner of memberships) and their own offline queue. A
//! user's token must belong to a live session: the handlers check its
//! session against the deny-list of revoked sessions (`chat_redis::sessions`)
//! before anything else, as the gateway does.

use std::sync::Arc;

use service_kit::auth::{Caller, InternalChannel, bearer, constant_time_eq};

use chat_model::ids::{Conversation, ConversationId};
use chat_redis::sessions::Revocations;
use proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use tonic::{Request, Status, service::Interceptor};

use crate::error::HistoryError;

/// Authenticates public calls: `authorization: Bearer <JWT or operator token>`.
#[derive(Clone)]
pub struct PublicAuth {
    jwt_secret: Arc<str>,
    /// None when no operator token is configured.
    operator: Option<Arc<str>>,
}

impl PublicAuth {
    pub fn new(jwt_secret: &str, operator_token: &str) -> Self {
        Self {
            jwt_secret: jwt_secret.into(),
            operator: (!operator_token.is_empty()).then(|| operator_token.into()),
        }
    }

    fn caller(&self, credential: &str) -> Result<(Caller, Option<TokenSession>), Status> {
        if let Some(operator) = &self.operator
            && constant_time_eq(credential.as_bytes(), operator.as_bytes())
        {
            return Ok((Caller::Operator, None));
        }
        service_kit::jwt::verify(&self.jwt_secret, credential)
            .map(|claims| (Caller::User(claims.sub), Some(TokenSession(claims.sid))))
            .map_err(|e| Status::unauthenticated(e.to_string()))
    }
}

impl Interceptor for PublicAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = match bearer(request.metadata()) {
            Some(credential) => self.caller(credential),
            None => Err(Status::unauthenticated(
                "missing authorization: Bearer <token> (log in through the gateway for one)",
            )),
        };
        match caller {
            Ok((caller, session)) => {
                request.extensions_mut().insert(caller);
                if let Some(session) = session {
                    request.extensions_mut().insert(session);
                }
                Ok(request)
            }
            Err(status) => {
                metrics::counter!("grpc_auth_refused_total", "listener" => "public").increment(1);
                Err(status)
            }
        }
    }
}

/// The session a user's token names, beside its [`Caller`].
#[derive(Debug, Clone)]
pub struct TokenSession(pub String);

/// Decides reads for a caller.
#[derive(Clone)]
pub struct Access {
    users: UserServiceClient<InternalChannel>,
    revocations: Revocations,
}

impl Access {
    pub fn new(users: UserServiceClient<InternalChannel>, revocations: Revocations) -> Self {
        Self { users, revocations }
    }

    /// Unauthenticated when the request's token belongs to a revoked
    /// session; unavailable when that cannot be told (fails closed).
    pub async fn check_session<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(TokenSession(session)) = request.extensions().get::<TokenSession>() else {
            return Ok(());
        };
        match self.revocations.is_revoked(session).await {
            Ok(false) => Ok(()),
            Ok(true) => {
                metrics::counter!("grpc_auth_refused_total", "listener" => "public").increment(1);
                Err(Status::unauthenticated("session revoked"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "revoked sessions unreadable");
                Err(Status::unavailable("cannot check the session now"))
            }
        }
    }

    /// May `caller` read `conversation`? Ok with the seq above which they
    /// read it (0: all; a room member's history may start at their join).
    pub async fn check_read(
        &self,
        caller: &Caller,
        conversation: &ConversationId,
    ) -> Result<u64, HistoryError> {
        let user = match caller {
            Caller::Service | Caller::Operator => return Ok(0),
            Caller::User(user) => user,
        };
        match conversation.kind() {
            Conversation::Dm(..) if conversation.dm_has(user) => Ok(0),
            Conversation::Dm(..) => Err(HistoryError::PermissionDenied(
                "not a party to this conversation".into(),
            )),
            Conversation::Room(room) => {
                let reply = self
                    .users
                    .clone()
                    .check_membership(user_pb::RoomMembershipRequest {
                        room: room.to_owned(),
                        username: user.clone(),
                    })
                    .await
                    .map_err(HistoryError::Upstream)?
                    .into_inner();
                // A room that does not exist and one the caller is not in look
                // the same: a stranger learns nothing about which rooms exist.
                if reply.member {
                    Ok(reply.history_from_seq)
                } else {
                    Err(HistoryError::PermissionDenied(format!(
                        "not a member of room {room}"
                    )))
                }
            }
        }
    }

    /// May `caller` read `username`'s offline queue?
    pub fn check_offline(caller: &Caller, username: &str) -> Result<(), HistoryError> {
        match caller {
            Caller::Service | Caller::Operator => Ok(()),
            Caller::User(user) if user == username => Ok(()),
            Caller::User(_) => Err(HistoryError::PermissionDenied(
                "only your own offline queue".into(),
            )),
        }
    }
}
