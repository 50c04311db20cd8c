//! Who may read a conversation: the two parties of a DM, the members of a
//! room; and from where (a room that shows history since joining).

use chat_model::ids::{Conversation, ConversationId};
use proto::user::v1 as user_pb;

use super::{Error, UserClient, error::USER_SERVICE};

#[derive(Clone)]
pub struct Access {
    users: UserClient,
}

impl Access {
    pub fn new(users: UserClient) -> Self {
        Self { users }
    }

    /// Ok with the seq above which `user` reads `conversation` (0: all).
    pub async fn check_can_read(
        &self,
        user: &str,
        conversation: &ConversationId,
    ) -> Result<u64, Error> {
        match conversation.kind() {
            Conversation::Dm(..) if conversation.dm_has(user) => Ok(0),
            Conversation::Dm(..) => {
                Err(Error::Forbidden("not a party to this conversation".into()))
            }
            Conversation::Room(room) => {
                let reply = self
                    .users
                    .clone()
                    .check_membership(user_pb::RoomMembershipRequest {
                        room: room.to_owned(),
                        username: user.to_owned(),
                    })
                    .await
                    .map_err(Error::upstream(USER_SERVICE))?
                    .into_inner();
                if !reply.room_exists {
                    Err(Error::NotFound(format!("room {room} not found")))
                } else if !reply.member {
                    Err(Error::Forbidden(format!("not a member of room {room}")))
                } else {
                    Ok(reply.history_from_seq)
                }
            }
        }
    }
}
