package io.moecluster.router;

import io.grpc.stub.StreamObserver;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.ServiceStatus;
import java.util.ArrayList;
import java.util.List;

/** The operator API: attention replicas, admission and whatever the {@link ClusterStatusContributor}s add. */
public final class AdminService extends AdminGrpc.AdminImplBase {
    /** How long one replica may take to answer Status before it is reported unhealthy. */
    private static final long STATUS_TIMEOUT_MILLIS = 1000;

    private final AttentionPool attention;
    private final AdmissionControl admission;
    private final List<ClusterStatusContributor> contributors;

    public AdminService(AttentionPool attention, AdmissionControl admission, List<ClusterStatusContributor> contributors) {
        this.attention = attention;
        this.admission = admission;
        this.contributors = List.copyOf(contributors);
    }

    @Override
    public void getClusterStatus(ClusterStatusRequest request, StreamObserver<ClusterStatus> responses) {
        ClusterStatus.Builder status = ClusterStatus.newBuilder()
                .setActiveRequests(admission.active())
                .setMaxActiveRequests(admission.maxActive());
        List<AttentionStatus> answered = new ArrayList<>();
        for (AttentionClient replica : attention.replicas()) {
            ServiceStatus.Builder s = ServiceStatus.newBuilder()
                    .setInstanceId(replica.address())
                    .setRole(ServiceRole.SERVICE_ROLE_ATTENTION)
                    .setEndpoint(replica.address());
            try {
                AttentionStatus a = replica.status(STATUS_TIMEOUT_MILLIS);
                answered.add(a);
                s.setHealthy(true).setRunningSequences(a.getRunningSequences()).setQueuedSequences(a.getQueuedSequences());
            } catch (RuntimeException e) {
                s.setHealthy(false);
            }
            status.addServices(s);
        }
        for (ClusterStatusContributor c : contributors) {
            c.contribute(status, answered);
        }
        responses.onNext(status.build());
        responses.onCompleted();
    }
}
