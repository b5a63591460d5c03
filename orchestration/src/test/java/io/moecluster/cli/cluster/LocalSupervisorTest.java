package io.moecluster.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The supervisor of {@code moe up} (issue 13, defect 1) on real processes ({@code sleep}), its
 * clock driven by the test: a service that exits is started again with its recorded command line
 * after the backoff (1 s, then 2 s for a second exit in a row, back to 1 s after 60 s running),
 * the restarts and how it ended are reported, and a drained expert service is not restarted.
 */
class LocalSupervisorTest {
    static final long SECOND = TimeUnit.SECONDS.toNanos(1);

    @TempDir
    Path dir;

    private final List<Long> started = new ArrayList<>();

    @AfterEach
    void killWhatRuns() {
        started.forEach(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly));
    }

    private long sleeper(ClusterState state, String id) throws IOException {
        List<String> command = List.of("sleep", "600");
        Process p = new ProcessBuilder(command).start();
        started.add(p.pid());
        state.updatePids(m -> m.put(id, p.pid()));
        state.writeCommand(id, command);
        return p.pid();
    }

    private void kill(long pid) throws Exception {
        ProcessHandle h = ProcessHandle.of(pid).orElseThrow();
        h.destroyForcibly();
        h.onExit().get(10, TimeUnit.SECONDS);
    }

    private long pidOf(ClusterState state, String id) throws IOException {
        long pid = state.pids().get(id);
        started.add(pid);
        return pid;
    }

    @Test
    void restartsAServiceThatExitsWithBackoffAndReportsIt() throws Exception {
        ClusterState state = new ClusterState(dir);
        long first = sleeper(state, "expert-0");
        LocalSupervisor supervisor = new LocalSupervisor(state);
        long t = 0;
        supervisor.tick(t);

        ClusterState.writeExitReason(dir, "expert-0", "its Aeron client was lost: ConductorServiceTimeoutException");
        kill(first);
        supervisor.tick(t += SECOND);
        supervisor.tick(t + SECOND - 1);
        assertThat(state.pids().get("expert-0")).as("not before the 1 s backoff").isEqualTo(first);
        supervisor.tick(t += SECOND);
        long second = pidOf(state, "expert-0");
        assertThat(second).as("restarted").isNotEqualTo(first);
        assertThat(ProcessHandle.of(second).map(ProcessHandle::isAlive)).contains(true);
        assertThat(Files.readString(state.log("expert-0"))).contains("=== moe up supervisor: restarting expert-0")
                .contains("its Aeron client was lost");

        kill(second); // a second exit in a row: 2 s
        supervisor.tick(t += SECOND);
        supervisor.tick(t + 2 * SECOND - 1);
        assertThat(state.pids().get("expert-0")).as("not before the 2 s backoff").isEqualTo(second);
        supervisor.tick(t += 2 * SECOND);
        long third = pidOf(state, "expert-0");
        assertThat(third).isNotIn(first, second);

        supervisor.tick(t += 61 * SECOND); // ran 60 s: stable again
        kill(third);
        supervisor.tick(t += SECOND);
        supervisor.tick(t += SECOND);
        long fourth = pidOf(state, "expert-0");
        assertThat(fourth).as("back to the 1 s backoff").isNotIn(first, second, third);

        supervisor.report("supervising");
        var report = state.supervisorReport().path("services").path("expert-0");
        assertThat(report.path("restarts").asInt()).isEqualTo(3);
        assertThat(report.path("lastExit").asText()).contains("exited with status 137 (killed)");
        StringWriter out = new StringWriter();
        io.moecluster.cli.StatusAccess.printProcesses(state, new PrintWriter(out, true));
        assertThat(out.toString()).containsPattern("expert-0\\s+" + fourth + "\\s+yes\\s+3\\s+exited with status 137");
    }

    @Test
    void doesNotRestartADrainedExpertServiceOrOneWithoutACommand() throws Exception {
        ClusterState state = new ClusterState(dir);
        Files.writeString(state.clusterFile(), """
                { "aeronDir": "/dev/shm/none", "channel": "aeron:ipc", "embeddedRouter": false,
                  "router": { "id": "router", "host": "127.0.0.1", "grpcPort": 1, "moeStreamId": 1000, "replyStreamId": 1001 },
                  "attention": [ { "id": "attention-0", "host": "127.0.0.1", "grpcPort": 2, "replyStreamId": 1100 } ],
                  "experts": [ { "id": "expert-0", "experts": [0], "firstLayer": 0, "lastLayer": 0, "streamId": 2000 } ] }
                """);
        Process drained = new ProcessBuilder("sleep", "600").start();
        started.add(drained.pid());
        state.updatePids(m -> m.put("expert-9", drained.pid()));
        state.writeCommand("expert-9", List.of("java", "moe", "serve", "expert", "--id", "expert-9"));
        long unknown = new ProcessBuilder("sleep", "600").start().pid();
        started.add(unknown);
        state.updatePids(m -> m.put("stray", unknown));
        LocalSupervisor supervisor = new LocalSupervisor(state);
        supervisor.tick(0);
        kill(drained.pid());
        kill(unknown);
        for (int i = 1; i <= 5; i++) {
            supervisor.tick(i * SECOND);
        }
        assertThat(state.pids()).containsEntry("expert-9", drained.pid()).containsEntry("stray", unknown);
        supervisor.report("supervising");
        var services = state.supervisorReport().path("services");
        assertThat(services.path("expert-9").path("state").asText()).contains("drained");
        assertThat(services.path("stray").path("state").asText()).contains("no command recorded");
        assertThat(services.path("expert-9").path("restarts").asInt()).isZero();
    }
}
