package io.moecluster.cuda.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.cuda.bindings.NcclUniqueId;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExchangePlanTest {
    @TempDir
    Path dir;

    @Test
    void offsetsArePrefixSumsInRankOrder() {
        ExchangePlan p = new ExchangePlan(new int[] {3, 0, 5}, new int[] {2, 4, 0});
        assertThat(new long[] {p.sendOffset(0), p.sendOffset(1), p.sendOffset(2)}).containsExactly(0, 3, 3);
        assertThat(new long[] {p.recvOffset(0), p.recvOffset(1), p.recvOffset(2)}).containsExactly(0, 2, 6);
        assertThat(p.totalSendRows()).isEqualTo(8);
        assertThat(p.totalRecvRows()).isEqualTo(6);
        assertThatThrownBy(() -> new ExchangePlan(new int[] {1}, new int[] {1, 2})).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ExchangePlan(new int[] {-1}, new int[] {1})).hasMessage("negative row count for rank 0");
    }

    @Test
    void plansOfAllRanksMustAgreePairwise() {
        int[][] rows = {{1, 2, 0}, {4, 0, 3}, {0, 5, 6}}; // rows[a][b]: a sends to b
        ExchangePlan[] plans = new ExchangePlan[3];
        for (int a = 0; a < 3; a++) {
            int[] recv = new int[3];
            for (int b = 0; b < 3; b++) {
                recv[b] = rows[b][a];
            }
            plans[a] = new ExchangePlan(rows[a], recv);
        }
        assertThat(ExchangePlan.consistent(plans)).isTrue();
        plans[2] = new ExchangePlan(new int[] {0, 5, 6}, new int[] {0, 3, 5});
        assertThat(ExchangePlan.consistent(plans)).isFalse();
    }

    @Test
    void theUniqueIdTravelsThroughAFileBesideTheClusterFile() throws Exception {
        byte[] bytes = new byte[NcclUniqueId.BYTES];
        new Random(1).nextBytes(bytes);
        NcclUniqueId id = new NcclUniqueId(bytes);
        Path file = NcclIdFile.beside(dir.resolve("cluster.json"));
        assertThat(file.getFileName().toString()).isEqualTo("cluster.json.nccl-id");
        assertThatThrownBy(() -> NcclIdFile.await(file, Duration.ofMillis(60))).hasMessageContaining("has rank 0 started?");
        NcclIdFile.publish(file, id);
        assertThat(NcclIdFile.await(file, Duration.ofSeconds(1))).isEqualTo(id);
        Files.writeString(file, "zz");
        assertThatThrownBy(() -> NcclIdFile.await(file, Duration.ofSeconds(1))).hasMessageContaining("256 hex digits");
    }
}
