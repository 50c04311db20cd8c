//! Accounts: register, log in (behind the failed-login limits), refresh,
//! who am I, the profile, the password, and deletion with the erasure of
//! what Redis keeps for the account (`erasure.rs`).

use std::net::IpAddr;

use proto::user::v1 as user_pb;

use super::{
    Error, UserClient,
    erasure::{self, Erasure},
    error::USER_SERVICE,
    limits::Limits,
};

#[derive(Clone)]
pub struct Accounts {
    users: UserClient,
    limits: Limits,
    erasure: Erasure,
}

impl Accounts {
    pub fn new(users: UserClient, limits: Limits, erasure: Erasure) -> Self {
        Self {
            users,
            limits,
            erasure,
        }
    }

    pub(super) fn users(&self) -> UserClient {
        self.users.clone()
    }

    /// Creates an account, counted against the registrations from `ip`.
    pub async fn register(
        &self,
        ip: IpAddr,
        request: user_pb::RegisterRequest,
    ) -> Result<user_pb::User, Error> {
        self.limits.registration(ip).await?;
        Ok(self
            .users
            .clone()
            .register(request)
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    /// A new session for `username` on `device`, if the password is right.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        device: String,
        ip: IpAddr,
    ) -> Result<user_pb::AuthenticateResponse, Error> {
        let request = user_pb::AuthenticateRequest {
            username: username.to_owned(),
            password,
            device,
            client_addr: ip.to_string(),
        };
        self.guarded(username, ip, |mut users| async move {
            users.authenticate(request).await
        })
        .await
    }

    /// A new token pair for a refresh token.
    pub async fn refresh(
        &self,
        refresh_token: String,
        ip: IpAddr,
    ) -> Result<user_pb::AuthenticateResponse, Error> {
        Ok(self
            .users
            .clone()
            .refresh(user_pb::RefreshRequest {
                refresh_token,
                client_addr: ip.to_string(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn get(&self, username: String) -> Result<user_pb::User, Error> {
        Ok(self
            .users
            .clone()
            .get_user(user_pb::GetUserRequest { username })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn update_profile(
        &self,
        username: String,
        display_name: String,
    ) -> Result<user_pb::User, Error> {
        Ok(self
            .users
            .clone()
            .update_profile(user_pb::UpdateProfileRequest {
                username,
                display_name,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    /// Sets a new password (the current one is checked, behind the
    /// failed-login limits) and signs out every session but `keep`.
    pub async fn change_password(
        &self,
        username: &str,
        keep: &str,
        current_password: String,
        new_password: String,
        ip: IpAddr,
    ) -> Result<usize, Error> {
        let request = user_pb::ChangePasswordRequest {
            username: username.to_owned(),
            current_password,
            new_password,
            keep: keep.to_owned(),
        };
        let reply = self
            .guarded(username, ip, |mut users| async move {
                users.change_password(request).await
            })
            .await?;
        Ok(reply.revoked.len())
    }

    /// Deletes the account (the password is checked, behind the failed-login
    /// limits), then erases what Redis keeps for it.
    pub async fn delete(&self, username: &str, password: String, ip: IpAddr) -> Result<(), Error> {
        // Read before the account goes: its DMs are listed under its name.
        let dms = self.erasure.dms(username).await?;
        let request = user_pb::DeleteAccountRequest {
            username: username.to_owned(),
            password,
        };
        let deleted = self
            .guarded(username, ip, |mut users| async move {
                users.delete_account(request).await
            })
            .await?;
        let conversations: Vec<String> = dms
            .into_iter()
            .chain(deleted.rooms.iter().map(|r| format!("room:{r}")))
            .collect();
        self.erasure.erase(username, &conversations).await;
        // chat-service knows who exists for MEMBERSHIP_TTL_MS (10 s): a DM
        // accepted within it may queue again what was just erased.
        let (erasure, user) = (self.erasure.clone(), username.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(erasure::SECOND_PASS).await;
            erasure.erase(&user, &conversations).await;
        });
        Ok(())
    }

    /// Runs a call that checks `username`'s password, counted against the
    /// failed-login limits like a login: the count is given back when the
    /// password was right, or when the call never reached the check.
    async fn guarded<T, F, Fut>(&self, username: &str, ip: IpAddr, call: F) -> Result<T, Error>
    where
        F: FnOnce(UserClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // Counted before the password is checked; refunded below on success.
        self.limits.login_attempt(username, ip).await?;
        match call(self.users.clone()).await {
            Ok(reply) => {
                self.limits.refund_login(username, ip, true).await;
                Ok(reply.into_inner())
            }
            Err(status) => {
                if status.code() != tonic::Code::Unauthenticated {
                    // Not a wrong password (the service was busy or down):
                    // the attempt does not count against the user.
                    self.limits.refund_login(username, ip, false).await;
                }
                Err(Error::upstream(USER_SERVICE)(status))
            }
        }
    }
}
