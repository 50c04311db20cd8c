//! history-service's modules, read from its sources: none imports one that
//! imports it back (the gRPC servers, the store, the archive and startup
//! each depend one way).

use std::path::Path;

use testkit::layers::Graph;

#[test]
fn no_module_imports_one_that_imports_it_back() {
    Graph::of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).assert_acyclic(10);
}
