//! The gRPC contracts of the chat system, generated at build time.
//!
//! `chat.history.v1` is public (grpcurl through server reflection); `chat.user.v1`
//! is internal to the cluster.

pub mod history {
    pub mod v1 {
        tonic::include_proto!("chat.history.v1");
        /// Encoded `FileDescriptorSet` for server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("history_descriptor");
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
