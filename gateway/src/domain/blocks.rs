//! Blocks: a user's list of the users they block. What a block stops (DMs,
//! invites, typing, presence) is enforced where each happens: chat-service
//! for DMs and typing, user-service for invites, `rooms.rs` for presence.

use chat_model::ids::check_username;
use proto::user::v1 as user_pb;

use super::{Error, accounts::Accounts, error::USER_SERVICE};

fn check_user(user: &str) -> Result<(), Error> {
    check_username(user).map_err(|e| Error::Invalid(e.to_string()))
}

impl Accounts {
    /// `user` blocks (or, with `block` false, unblocks) `target`. Returns
    /// whether anything changed.
    pub async fn set_block(
        &self,
        user: String,
        target: String,
        block: bool,
    ) -> Result<bool, Error> {
        check_user(&target)?;
        let req = user_pb::BlockRequest { user, target };
        let mut users = self.users();
        let reply = if block {
            users.block(req).await
        } else {
            users.unblock(req).await
        };
        Ok(reply
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .changed)
    }

    /// Whom `user` blocks, newest first.
    pub async fn blocks(&self, user: String) -> Result<Vec<user_pb::BlockEntry>, Error> {
        let reply = self
            .users()
            .get_blocks(user_pb::GetBlocksRequest {
                usernames: vec![user],
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner();
        Ok(reply
            .users
            .into_iter()
            .next()
            .map(|u| u.blocked)
            .unwrap_or_default())
    }
}
