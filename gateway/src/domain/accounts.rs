//! Accounts: register, log in (behind the failed-login limits), who am I.

use std::net::IpAddr;

use proto::user::v1 as user_pb;

use super::{Error, UserClient, error::USER_SERVICE, limits::Limits};

#[derive(Clone)]
pub struct Accounts {
    users: UserClient,
    limits: Limits,
}

impl Accounts {
    pub fn new(users: UserClient, limits: Limits) -> Self {
        Self { users, limits }
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

    /// A session token for `username`, if the password is right.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        ip: IpAddr,
    ) -> Result<user_pb::AuthenticateResponse, Error> {
        // Counted before the password is checked; refunded below on success.
        self.limits.login_attempt(username, ip).await?;
        let result = self
            .users
            .clone()
            .authenticate(user_pb::AuthenticateRequest {
                username: username.to_owned(),
                password,
            })
            .await;
        match result {
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

    pub async fn get(&self, username: String) -> Result<user_pb::User, Error> {
        Ok(self
            .users
            .clone()
            .get_user(user_pb::GetUserRequest { username })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }
}
