//! A user's sessions (signed-in devices): list them, sign one out, or all.
//! user-service revokes in PostgreSQL and announces the revocation, which
//! closes the sessions' sockets on every gateway (`delivery/revocations.rs`).

use proto::user::v1 as user_pb;

use super::{Error, UserClient, error::USER_SERVICE, tokens::Identity};

#[derive(Clone)]
pub struct UserSessions {
    users: UserClient,
}

impl UserSessions {
    pub fn new(users: UserClient) -> Self {
        Self { users }
    }

    pub async fn list(&self, user: &str) -> Result<Vec<user_pb::Session>, Error> {
        Ok(self
            .users
            .clone()
            .list_sessions(user_pb::ListSessionsRequest {
                username: user.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .sessions)
    }

    /// Signs out `user`'s session `id` (NotFound if it is not theirs).
    pub async fn revoke(&self, user: &str, id: &str) -> Result<(), Error> {
        if !chat_model::ids::valid_session_id(id) {
            return Err(Error::NotFound("no such session".into()));
        }
        self.users
            .clone()
            .revoke_session(user_pb::RevokeSessionRequest {
                username: user.to_owned(),
                session_id: id.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?;
        Ok(())
    }

    /// Signs out the caller's own session.
    pub async fn logout(&self, me: &Identity) -> Result<(), Error> {
        self.revoke(&me.user, &me.session).await
    }

    /// Signs out every session of the caller's, theirs included; returns
    /// how many.
    pub async fn logout_all(&self, me: &Identity) -> Result<usize, Error> {
        Ok(self
            .users
            .clone()
            .revoke_all_sessions(user_pb::RevokeAllSessionsRequest {
                username: me.user.clone(),
                keep: None,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .revoked
            .len())
    }
}
