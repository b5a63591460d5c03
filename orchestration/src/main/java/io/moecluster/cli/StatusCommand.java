package io.moecluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.LocalSupervisor;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.ExpertLoad;
import io.moecluster.proto.v1.ReplicaLoad;
import io.moecluster.proto.v1.ServiceStatus;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Prints what the cluster's Admin API reports: services, experts hosted, tokens per expert, load.")
final class StatusCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--server", paramLabel = "HOST:PORT", description = "A router's gRPC address (default: the local cluster's).")
    String server;

    @Mixin
    StateDirFlag stateDir;

    @Mixin
    ClientSecurityFlags client;

    @Override
    public Integer call() throws Exception {
        String target = server != null ? server : ServerAddress.local(stateDir.state());
        PrintWriter out = spec.commandLine().getOut();
        if (server == null) {
            printProcesses(stateDir.state(), out);
        }
        ManagedChannel channel = client.security().channel(target);
        try {
            ClusterStatus s = AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
            print(s, target, out);
        } catch (StatusRuntimeException e) {
            if (server != null) {
                throw e;
            }
            out.flush();
            throw new IllegalStateException("router " + target + " is not answering (" + e.getStatus().getCode()
                    + "); the processes above are what the local state says");
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        return 0;
    }

    /**
     * The local cluster's processes as its state says: each service's pid and whether it runs, and,
     * under a supervisor, how often it was restarted and how it last ended.
     */
    static void printProcesses(ClusterState state, PrintWriter out) throws IOException {
        if (!state.exists()) {
            return;
        }
        Map<String, Long> pids = state.pids();
        JsonNode report = state.supervisorReport();
        Long supervisor = pids.get(LocalSupervisor.ID);
        boolean supervised = supervisor != null && ProcessHandle.of(supervisor).map(ProcessHandle::isAlive).orElse(false);
        out.printf(Locale.ROOT, "local cluster in %s: %s%n", state.dir(), supervised
                ? "supervisor pid " + supervisor + " (" + (report == null ? "starting" : report.path("backoff").asText()) + ")"
                : supervisor == null ? "no supervisor (moe up --no-supervise): services that exit stay down"
                : "supervisor pid " + supervisor + " is NOT running: services that exit stay down");
        out.printf(Locale.ROOT, "%-14s %-8s %-8s %-8s %s%n", "PROCESS", "PID", "RUNNING", "RESTARTS", "LAST EXIT");
        for (Map.Entry<String, Long> e : pids.entrySet()) {
            if (e.getKey().equals(LocalSupervisor.ID)) {
                continue;
            }
            boolean alive = ProcessHandle.of(e.getValue()).map(ProcessHandle::isAlive).orElse(false);
            JsonNode s = report == null ? null : report.path("services").get(e.getKey());
            String restarts = s == null ? "-" : s.path("restarts").asText();
            String last = s == null || !s.has("lastExit") ? "" : s.path("lastExit").asText() + " at "
                    + s.path("lastExitAt").asText() + (alive ? "" : "; " + s.path("state").asText());
            out.printf(Locale.ROOT, "%-14s %-8d %-8s %-8s %s%n", e.getKey(), e.getValue(), alive ? "yes" : "NO", restarts,
                    last);
        }
    }

    static void print(ClusterStatus s, String target, PrintWriter out) {
        out.printf(Locale.ROOT, "router %s: %d/%d requests active%n", target, s.getActiveRequests(), s.getMaxActiveRequests());
        out.printf(Locale.ROOT, "%-14s %-10s %-8s %-34s %s%n", "SERVICE", "ROLE", "HEALTHY", "ENDPOINT", "DETAIL");
        for (ServiceStatus svc : s.getServicesList()) {
            String role = svc.getRole().name().replace("SERVICE_ROLE_", "").toLowerCase(Locale.ROOT);
            String detail = switch (svc.getRole()) {
                case SERVICE_ROLE_EXPERT -> "experts " + svc.getExpertsList() + " layers " + svc.getFirstLayer() + "-"
                        + svc.getLastLayer() + ", " + svc.getOutstandingTokens() + " tokens outstanding"
                        + (svc.getDraining() ? ", DRAINING" : "")
                        + (svc.getLastFailure().isEmpty() ? "" : ", last failure: " + svc.getLastFailure());
                case SERVICE_ROLE_ATTENTION -> svc.getRunningSequences() + " running, " + svc.getQueuedSequences() + " queued";
                default -> "";
            };
            out.printf(Locale.ROOT, "%-14s %-10s %-8s %-34s %s%n", svc.getInstanceId(), role, svc.getHealthy() ? "yes" : "NO",
                    svc.getEndpoint(), detail);
        }
        if (s.getExpertLoadCount() > 0) {
            long total = s.getExpertLoadList().stream().mapToLong(ExpertLoad::getTokensRouted).sum();
            out.printf(Locale.ROOT, "%-8s %14s %8s %10s   %s%n", "EXPERT", "TOKENS ROUTED", "SHARE", "TOKENS/S",
                    "PER REPLICA (tokens/s, tokens routed)");
            for (ExpertLoad l : s.getExpertLoadList()) {
                StringBuilder replicas = new StringBuilder();
                for (ReplicaLoad r : s.getReplicaLoadList()) {
                    if (r.getExpert() == l.getExpert()) {
                        replicas.append(replicas.isEmpty() ? "" : "; ").append(String.format(Locale.ROOT, "%s %.1f, %d",
                                r.getInstanceId(), r.getTokensPerSecond(), r.getTokensRouted()));
                    }
                }
                out.printf(Locale.ROOT, "%-8d %14d %7.1f%% %10.1f   %s%n", l.getExpert(), l.getTokensRouted(),
                        total == 0 ? 0.0 : 100.0 * l.getTokensRouted() / total, l.getTokensPerSecond(), replicas);
            }
            if (s.getRedispatches() > 0) {
                out.printf(Locale.ROOT, "%d expert batches re-dispatched to another replica, the latest at %s%n",
                        s.getRedispatches(), Instant.ofEpochMilli(s.getLastRedispatchUnixMs()));
            }
        }
    }
}
