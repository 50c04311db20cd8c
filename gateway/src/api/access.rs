//! Who may read a conversation: the two parties of a DM, the members of a room.

use chat_model::ids::{Conversation, ConversationId};
use proto::user::v1 as pb;

use super::error::ApiError;
use crate::state::AppState;

pub async fn check_can_read(
    state: &AppState,
    user: &str,
    conversation: &ConversationId,
) -> Result<(), ApiError> {
    match conversation.kind() {
        Conversation::Dm(..) if conversation.dm_has(user) => Ok(()),
        Conversation::Dm(..) => Err(ApiError::Forbidden(
            "not a party to this conversation".into(),
        )),
        Conversation::Room(room) => {
            let reply = state
                .users
                .clone()
                .check_membership(pb::RoomMembershipRequest {
                    room: room.to_owned(),
                    username: user.to_owned(),
                })
                .await?
                .into_inner();
            if !reply.room_exists {
                Err(ApiError::NotFound(format!("room {room} not found")))
            } else if !reply.member {
                Err(ApiError::Forbidden(format!("not a member of room {room}")))
            } else {
                Ok(())
            }
        }
    }
}
