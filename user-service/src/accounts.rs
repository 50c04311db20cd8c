//! The session and account calls of `chat.user.v1.UserService`: refresh,
//! list and revoke sessions, change or reset a password, delete an
//! account, change a profile. Each revocation is committed in PostgreSQL,
//! then announced (`sessions.rs`).

use chat_model::ids::valid_session_id;
use proto::user::v1 as user_pb;

use crate::{
    error::UserError,
    grpc::{UserApi, check_display_name, check_password, check_username, timestamp, user_pb},
};

fn check_session(id: &str) -> Result<(), UserError> {
    if valid_session_id(id) {
        Ok(())
    } else {
        Err(UserError::InvalidArgument(
            "session_id must be 32 hex digits".into(),
        ))
    }
}

impl UserApi {
    pub(crate) async fn do_refresh(
        &self,
        req: user_pb::RefreshRequest,
    ) -> Result<user_pb::AuthenticateResponse, UserError> {
        self.sessions
            .refresh(&req.refresh_token, &req.client_addr)
            .await
    }

    pub(crate) async fn do_list_sessions(
        &self,
        req: user_pb::ListSessionsRequest,
    ) -> Result<user_pb::ListSessionsResponse, UserError> {
        check_username(&req.username)?;
        let rows = self.sessions.store().list(&req.username).await?;
        Ok(user_pb::ListSessionsResponse {
            sessions: rows
                .into_iter()
                .map(|s| user_pb::Session {
                    id: s.id,
                    device: s.device,
                    client_addr: s.client_addr,
                    created_at: Some(timestamp(s.created_at)),
                    last_seen_at: Some(timestamp(s.last_seen_at)),
                })
                .collect(),
        })
    }

    pub(crate) async fn do_revoke_session(
        &self,
        req: user_pb::RevokeSessionRequest,
    ) -> Result<user_pb::RevokeSessionsResponse, UserError> {
        check_username(&req.username)?;
        check_session(&req.session_id)?;
        let revoked = self
            .sessions
            .store()
            .revoke(&req.username, &req.session_id, "signed out")
            .await?
            .ok_or_else(|| UserError::NotFound("no such session".into()))?;
        let revoked = vec![revoked];
        self.sessions.announce(&revoked).await?;
        Ok(user_pb::RevokeSessionsResponse { revoked })
    }

    pub(crate) async fn do_revoke_all(
        &self,
        req: user_pb::RevokeAllSessionsRequest,
    ) -> Result<user_pb::RevokeSessionsResponse, UserError> {
        check_username(&req.username)?;
        if let Some(keep) = &req.keep {
            check_session(keep)?;
        }
        let revoked = self
            .store
            .revoke_all(
                &req.username,
                req.keep.as_deref(),
                self.sessions.recent_secs(),
            )
            .await?;
        self.sessions.announce(&revoked.announce).await?;
        Ok(user_pb::RevokeSessionsResponse {
            revoked: revoked.now,
        })
    }

    pub(crate) async fn do_change_password(
        &self,
        req: user_pb::ChangePasswordRequest,
    ) -> Result<user_pb::RevokeSessionsResponse, UserError> {
        check_username(&req.username)?;
        check_session(&req.keep)?;
        check_password(&req.new_password)?;
        self.check_credentials(&req.username, req.current_password)
            .await?;
        self.set_password(
            &req.username,
            req.new_password,
            Some(&req.keep),
            "password changed",
        )
        .await
    }

    pub(crate) async fn do_reset_password(
        &self,
        req: user_pb::ResetPasswordRequest,
    ) -> Result<user_pb::RevokeSessionsResponse, UserError> {
        check_username(&req.username)?;
        check_password(&req.new_password)?;
        self.set_password(&req.username, req.new_password, None, "password reset")
            .await
    }

    /// Sets `username`'s password and signs out its sessions but `keep`.
    async fn set_password(
        &self,
        username: &str,
        password: String,
        keep: Option<&str>,
        reason: &'static str,
    ) -> Result<user_pb::RevokeSessionsResponse, UserError> {
        let hash = self.hasher.hash(password).await?;
        let revoked = self
            .store
            .set_password(username, &hash, keep, reason, self.sessions.recent_secs())
            .await?;
        tracing::info!(%username, revoked = revoked.now.len(), reason);
        self.sessions.announce(&revoked.announce).await?;
        Ok(user_pb::RevokeSessionsResponse {
            revoked: revoked.now,
        })
    }

    pub(crate) async fn do_delete_account(
        &self,
        req: user_pb::DeleteAccountRequest,
    ) -> Result<user_pb::DeleteAccountResponse, UserError> {
        check_username(&req.username)?;
        self.check_credentials(&req.username, req.password).await?;
        let deleted = self
            .store
            .delete_account(&req.username, self.sessions.recent_secs())
            .await?;
        tracing::info!(username = %req.username, rooms = deleted.rooms.len(), "account deleted");
        for room in &deleted.rooms {
            self.events.changed(room).await;
        }
        self.sessions.announce(&deleted.revoked.announce).await?;
        Ok(user_pb::DeleteAccountResponse {
            rooms: deleted.rooms,
            revoked: deleted.revoked.now,
        })
    }

    pub(crate) async fn do_update_profile(
        &self,
        req: user_pb::UpdateProfileRequest,
    ) -> Result<user_pb::User, UserError> {
        check_username(&req.username)?;
        let display_name = req.display_name.trim();
        let display_name = if display_name.is_empty() {
            req.username.as_str()
        } else {
            display_name
        };
        check_display_name(display_name)?;
        let user = self
            .store
            .update_profile(&req.username, display_name)
            .await?;
        Ok(user_pb(user))
    }

    /// BadCredentials unless `password` is `username`'s.
    pub(crate) async fn check_credentials(
        &self,
        username: &str,
        password: String,
    ) -> Result<(), UserError> {
        let stored = if password.chars().count() <= crate::password::MAX_PASSWORD {
            self.store.password_hash(username).await?
        } else {
            None
        };
        if self.hasher.verify(password, stored).await? {
            Ok(())
        } else {
            Err(UserError::BadCredentials)
        }
    }
}
