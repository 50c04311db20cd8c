//! The gRPC contracts of the chat system, generated at build time.
//!
//! `chat.history.v1` is public (grpcurl through server reflection, with a user's
//! JWT); `chat.history.internal.v1` and `chat.user.v1` are internal to the
//! cluster and need the service token.

pub mod history {
    pub mod v1 {
        tonic::include_proto!("chat.history.v1");
        /// Encoded `FileDescriptorSet` for server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("history_descriptor");
    }

    pub mod internal {
        pub mod v1 {
            tonic::include_proto!("chat.history.internal.v1");
            /// Encoded `FileDescriptorSet` of the public and internal files.
            pub const FILE_DESCRIPTOR_SET: &[u8] =
                tonic::include_file_descriptor_set!("history_internal_descriptor");
        }
    }
}

pub mod user {
    pub mod v1 {
        tonic::include_proto!("chat.user.v1");
        /// Encoded `FileDescriptorSet` for server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("user_descriptor");
    }
}
