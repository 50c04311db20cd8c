//! The block calls of the user API. Every change bumps the blocker's
//! block-list version, so every worker enforces it from its next batch.

use proto::user::v1 as user_pb;

use crate::{
    block_store::{BlockRow, MAX_GET_BLOCKS},
    error::UserError,
    grpc::{UserApi, check_room, check_username, timestamp},
};

fn entry(b: BlockRow) -> user_pb::BlockEntry {
    user_pb::BlockEntry {
        username: b.username,
        created_at: Some(timestamp(b.created_at)),
    }
}

impl UserApi {
    pub(crate) async fn set_block(
        &self,
        req: user_pb::BlockRequest,
        block: bool,
    ) -> Result<user_pb::BlockResponse, UserError> {
        check_username(&req.user)?;
        check_username(&req.target)?;
        let changed = if block {
            self.store.block(&req.user, &req.target).await?
        } else {
            self.store.unblock(&req.user, &req.target).await?
        };
        if changed {
            self.events.blocks_changed(&req.user).await;
        }
        Ok(user_pb::BlockResponse { changed })
    }

    pub(crate) async fn get_blocks_(
        &self,
        req: user_pb::GetBlocksRequest,
    ) -> Result<user_pb::GetBlocksResponse, UserError> {
        if req.usernames.len() > MAX_GET_BLOCKS {
            return Err(UserError::InvalidArgument(format!(
                "at most {MAX_GET_BLOCKS} usernames per call"
            )));
        }
        for name in &req.usernames {
            check_username(name)?;
        }
        let mut found = self.store.blocks_of(&req.usernames).await?;
        let users = req
            .usernames
            .into_iter()
            .map(|username| user_pb::UserBlocks {
                blocked: found
                    .remove(&username)
                    .unwrap_or_default()
                    .into_iter()
                    .map(entry)
                    .collect(),
                username,
            })
            .collect();
        Ok(user_pb::GetBlocksResponse { users })
    }

    pub(crate) async fn blocked_by_(
        &self,
        req: user_pb::BlockedByRequest,
    ) -> Result<user_pb::BlockedByResponse, UserError> {
        check_username(&req.username)?;
        check_room(&req.room)?;
        let usernames = self.store.blocked_by(&req.username, &req.room).await?;
        Ok(user_pb::BlockedByResponse { usernames })
    }
}
