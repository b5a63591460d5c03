package io.moecluster.dispatch.placement;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.discovery.ClusterSpec;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The placement table the router dispatches by: for expert {@code e} of layer {@code l}, the live
 * replicas that host it. Built from the cluster file or a registry and replaced whole when the
 * registry changes ({@link #update}); a dispatch reads one consistent table without locking.
 *
 * <p>A replica keeps its identity (and counters) across updates while its definition is unchanged,
 * so a batch in flight to a replica that an update removes still completes: removal only stops new
 * batches, which is how draining works.
 */
public final class ExpertPlacement {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertPlacement.class);
    private static final ExpertReplica[] NONE = new ExpertReplica[0];

    private final ModelConfig config;
    private final String defaultChannel;
    private final int slots;
    private volatile Table table;
    private final List<ExpertReplica> leaving = new CopyOnWriteArrayList<>();

    private record Table(ExpertReplica[][][] byLayerAndExpert, List<ExpertReplica> all, long version) {
    }

    private ExpertPlacement(ModelConfig config, String defaultChannel) {
        this.config = config;
        this.defaultChannel = defaultChannel;
        this.slots = config.expertSlots();
        this.table = new Table(new ExpertReplica[config.numLayers()][slots][], List.of(), 0);
    }

    /**
     * The table of a cluster file, checked against the model: a service naming a layer or expert the
     * model lacks, or an expert no service hosts, is an error naming it.
     */
    public static ExpertPlacement build(ClusterSpec spec, ModelConfig config) {
        ExpertPlacement p = new ExpertPlacement(config, spec.channel());
        p.update(spec.experts(), true);
        String missing = p.missing();
        if (missing != null) {
            throw new IllegalArgumentException("cluster file: " + missing);
        }
        return p;
    }

    /** An empty table that a registry fills in; services that register later are added by {@link #update}. */
    public static ExpertPlacement empty(ModelConfig config, String defaultChannel) {
        return new ExpertPlacement(config, defaultChannel);
    }

    /** Expert slots: the experts plus the shared expert, where the model has one. */
    public int expertSlots() {
        return slots;
    }

    /**
     * Replaces the table with these services. With {@code strict}, a service that does not fit the
     * model is an error; otherwise it is logged and left out (a registry may list a service of
     * another model), and experts left without any replica are logged.
     */
    public synchronized void update(List<ClusterSpec.Expert> services, boolean strict) {
        Table old = table;
        Map<String, ExpertReplica> previous = new HashMap<>();
        for (ExpertReplica r : old.all()) {
            previous.put(r.id(), r);
        }
        List<List<ExpertReplica>>[] cells = cells();
        List<ExpertReplica> all = new ArrayList<>();
        for (ClusterSpec.Expert service : services) {
            String problem = problem(service);
            if (problem != null) {
                if (strict) {
                    throw new IllegalArgumentException("cluster file: " + problem);
                }
                LOG.warn("expert service left out of the placement: {}", problem);
                continue;
            }
            String channel = service.channel() != null ? service.channel() : defaultChannel;
            ExpertReplica r = previous.get(service.id());
            if (r == null || !r.service().equals(service) || !r.channel().equals(channel)) {
                r = new ExpertReplica(service, channel, slots);
            }
            all.add(r);
            int last = Math.min(service.lastLayer(), config.numLayers() - 1);
            for (int l = service.firstLayer(); l <= last; l++) {
                for (int e : service.experts()) {
                    cells[l].get(e).add(r);
                }
            }
        }
        ExpertReplica[][][] t = new ExpertReplica[config.numLayers()][slots][];
        for (int l = 0; l < t.length; l++) {
            for (int e = 0; e < slots; e++) {
                t[l][e] = cells[l].get(e).toArray(NONE);
            }
        }
        table = new Table(t, List.copyOf(all), old.version() + 1);
        for (ExpertReplica r : old.all()) {
            if (!all.contains(r) && r.outstandingTokens() > 0) {
                leaving.add(r);
            }
        }
        leaving.removeAll(all);
        if (!strict) {
            String missing = missing();
            if (missing != null) {
                LOG.warn("placement updated to {} expert services; {}", all.size(), missing);
            } else {
                LOG.info("placement updated: {} expert services", all.size());
            }
        }
    }

    @SuppressWarnings("unchecked")
    private List<List<ExpertReplica>>[] cells() {
        List<List<ExpertReplica>>[] cells = new List[config.numLayers()];
        for (int l = 0; l < cells.length; l++) {
            cells[l] = new ArrayList<>(slots);
            for (int e = 0; e < slots; e++) {
                cells[l].add(new ArrayList<>(2));
            }
        }
        return cells;
    }

    private String problem(ClusterSpec.Expert service) {
        if (service.lastLayer() >= config.numLayers()) {
            return "expert service " + service.id() + " names layer " + service.lastLayer() + " but the model has "
                    + config.numLayers();
        }
        for (int e : service.experts()) {
            if (e < 0 || e >= slots) {
                return "expert service " + service.id() + " names expert " + e + "; the model has experts 0-" + (slots - 1)
                        + (config.hasSharedExpert() ? " (" + (slots - 1) + " is the shared expert)" : "");
            }
        }
        return null;
    }

    /** The first (layer, expert) of a MoE layer that no replica hosts, described; null when all are hosted. */
    public String missing() {
        ExpertReplica[][][] t = table.byLayerAndExpert();
        for (int l = 0; l < t.length; l++) {
            if (!config.isMoeLayer(l)) {
                continue;
            }
            for (int e = 0; e < slots; e++) {
                if (t[l][e].length == 0) {
                    return "no expert service hosts expert " + e + " of layer " + l;
                }
            }
        }
        return null;
    }

    /** The replicas hosting expert {@code expert} of {@code layer}, in registry order; empty if none. */
    public ExpertReplica[] replicas(int layer, int expert) {
        return table.byLayerAndExpert()[layer][expert];
    }

    /** Every replica in the table, in registry order. */
    public List<ExpertReplica> replicas() {
        return table.all();
    }

    /**
     * Replicas an update removed while batches to them were still unanswered; each stays here until
     * those are settled. {@code moe drain} waits for this to empty before stopping the process.
     */
    public List<ExpertReplica> leaving() {
        leaving.removeIf(r -> r.outstandingTokens() == 0);
        return List.copyOf(leaving);
    }

    /** Increases on every update; a dispatcher compares it to notice new or removed replicas. */
    public long version() {
        return table.version();
    }
}
