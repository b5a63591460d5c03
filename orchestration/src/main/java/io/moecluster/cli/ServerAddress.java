package io.moecluster.cli;

import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.discovery.ClusterSpec;

final class ServerAddress {
    private ServerAddress() {
    }

    /** The gRPC address of the local cluster 'moe up' started. */
    static String local(ClusterState state) {
        ClusterSpec spec = state.spec();
        return spec.router().host() + ":" + spec.router().grpcPort();
    }
}
