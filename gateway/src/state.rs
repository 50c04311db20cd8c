//! What the HTTP routes share: one handle per domain operation group, and
//! the WebSocket sessions' context. Each handler extracts only the handle
//! it uses (`State<Rooms>`, through `FromRef`); cloning the state is one
//! pointer copy.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::{
    domain::{
        accounts::Accounts, conversations::Conversations, export::Export, history::History,
        reads::Reads, rooms::Rooms, sessions::UserSessions, tickets::Tickets, tokens::Tokens,
    },
    http::extract::ProxyTrust,
    session::Sessions,
    stream::registry::Streams,
};

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub accounts: Accounts,
    pub user_sessions: UserSessions,
    pub export: Export,
    pub rooms: Rooms,
    pub conversations: Conversations,
    pub history: History,
    pub reads: Reads,
    pub tickets: Tickets,
    pub tokens: Tokens,
    pub proxy_trust: ProxyTrust,
    pub sessions: Sessions,
    pub streams: Streams,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

/// `FromRef` for each handle: `$field` of the shared state, cloned.
macro_rules! handles {
    ($($ty:ty => $field:ident),* $(,)?) => {
        $(impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.0.$field.clone()
            }
        })*
    };
}

handles! {
    Accounts => accounts,
    UserSessions => user_sessions,
    Export => export,
    Rooms => rooms,
    Conversations => conversations,
    History => history,
    Reads => reads,
    Tickets => tickets,
    Tokens => tokens,
    ProxyTrust => proxy_trust,
    Sessions => sessions,
    Streams => streams,
}
