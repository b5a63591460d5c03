package io.moecluster.dispatch.placement;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The replica-choice policy on its own: counters in, a replica out, no transport. */
class ReplicaChoiceTest {
    private static final int EXPERT = 3;
    private static final long NOW = 1_000_000_000_000L;
    private static final ExpertReplica[] NONE_TRIED = new ExpertReplica[4];

    private final Set<ExpertReplica> disconnected = new HashSet<>();
    private final ReplicaChoice.Links links = r -> !disconnected.contains(r);

    private static ExpertReplica replica(String id) {
        return new ExpertReplica(new ClusterSpec.Expert(id, List.of(EXPERT), 0, 1, id.hashCode() & 0xffff), "aeron:ipc", 9);
    }

    private ExpertReplica choose(ExpertReplica... candidates) {
        return ReplicaChoice.choose(candidates, EXPERT, NONE_TRIED, 0, NOW, links);
    }

    @Test
    void leastOutstandingTokensWins() {
        ExpertReplica a = replica("a");
        ExpertReplica b = replica("b");
        a.sent(EXPERT, 5);
        b.sent(EXPERT, 2);
        assertThat(choose(a, b)).isSameAs(b);
        b.sent(EXPERT, 4);
        assertThat(choose(a, b)).isSameAs(a);
    }

    @Test
    void tiesGoToTheReplicaRoutedFewerTokensOfThisExpertThenToTheFirstListed() {
        ExpertReplica a = replica("a");
        ExpertReplica b = replica("b");
        assertThat(choose(a, b)).as("all equal: the first listed").isSameAs(a);
        a.sent(EXPERT, 8);
        a.settled(8);
        assertThat(a.outstandingTokens()).isZero();
        assertThat(choose(a, b)).as("nothing outstanding anywhere: fewer routed wins").isSameAs(b);
        b.sent(7, 100); // tokens of another expert do not count against it
        b.settled(100);
        assertThat(choose(a, b)).isSameAs(b);
    }

    @Test
    void equalReplicasShareAnExpertEvenly() {
        ExpertReplica a = replica("a");
        ExpertReplica b = replica("b");
        int toA = 0;
        for (int i = 0; i < 100; i++) {
            ExpertReplica r = choose(a, b);
            r.sent(EXPERT, 4);
            r.settled(4);
            toA += r == a ? 1 : 0;
        }
        assertThat(toA).isEqualTo(50);
    }

    @Test
    void quarantinedReplicasComeLastTheOneDueBackFirst() {
        ExpertReplica a = replica("a");
        ExpertReplica b = replica("b");
        ExpertReplica c = replica("c");
        a.failed("no answer within 2000 ms", NOW - 1_000);
        assertThat(a.quarantined(NOW)).isTrue();
        c.sent(EXPERT, 1000); // busy, but live
        assertThat(choose(a, c)).as("a busy live replica beats a quarantined one").isSameAs(c);
        b.failed("disconnected", NOW);
        assertThat(choose(b, a)).as("both quarantined: a is due back first").isSameAs(a);
        a.answered();
        assertThat(a.quarantined(NOW)).as("an answer ends the quarantine").isFalse();
        assertThat(choose(b, a)).isSameAs(a);
    }

    @Test
    void notYetConnectedRanksBetweenLiveAndQuarantined() {
        ExpertReplica fresh = replica("fresh");
        ExpertReplica live = replica("live");
        ExpertReplica sick = replica("sick");
        disconnected.add(fresh);
        live.sent(EXPERT, 500);
        sick.failed("unreachable", NOW);
        assertThat(choose(fresh, live, sick)).isSameAs(live);
        assertThat(choose(fresh, sick)).isSameAs(fresh);
    }

    @Test
    void replicasAlreadyTriedForTheBatchAreSkipped() {
        ExpertReplica a = replica("a");
        ExpertReplica b = replica("b");
        ExpertReplica[] tried = {a, null, null, null};
        assertThat(ReplicaChoice.choose(new ExpertReplica[] {a, b}, EXPERT, tried, 1, NOW, links)).isSameAs(b);
        tried[1] = b;
        assertThat(ReplicaChoice.choose(new ExpertReplica[] {a, b}, EXPERT, tried, 2, NOW, links)).isNull();
        assertThat(ReplicaChoice.choose(new ExpertReplica[0], EXPERT, NONE_TRIED, 0, NOW, links)).isNull();
    }

    /** Draining: the replica leaves the placement, so it gets no new batch, while its batch in flight completes. */
    @Test
    void aDrainedReplicaGetsNoNewBatchesButItsBatchInFlightSettles() throws Exception {
        ModelConfig config = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
        ClusterSpec.Expert base = new ClusterSpec.Expert("base", List.of(0, 1, 2, 3, 4, 5, 6, 7), 0, 1, 2000);
        ClusterSpec.Expert extra = new ClusterSpec.Expert("extra", List.of(EXPERT), 0, 1, 2001);
        ExpertPlacement placement = ExpertPlacement.build(PlacementTest.spec(List.of(base, extra)), config);
        ExpertReplica leaving = placement.replicas(0, EXPERT)[1];
        assertThat(leaving.id()).isEqualTo("extra");
        placement.replicas(0, EXPERT)[0].sent(EXPERT, 10);
        assertThat(ReplicaChoice.choose(placement.replicas(0, EXPERT), EXPERT, NONE_TRIED, 0, NOW, links))
                .isSameAs(leaving);
        leaving.sent(EXPERT, 20);

        placement.update(List.of(base), false); // moe drain: unlisted first
        ExpertReplica[] now = placement.replicas(0, EXPERT);
        assertThat(now).extracting(ExpertReplica::id).containsExactly("base");
        assertThat(ReplicaChoice.choose(now, EXPERT, NONE_TRIED, 0, NOW, links).id()).isEqualTo("base");
        assertThat(placement.leaving()).extracting(ExpertReplica::id).containsExactly("extra");
        leaving.settled(20); // its answer arrives
        assertThat(leaving.outstandingTokens()).isZero();
    }
}
