package io.moecluster.discovery;

import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How an expert service describes itself in a registry's metadata: the experts it hosts, its layer
 * range, and the Aeron channel and stream it reads. Both directions, so what one service registers
 * is exactly what the router reads back.
 */
public final class ExpertMetadata {
    public static final String EXPERTS = "experts";
    public static final String FIRST_LAYER = "first_layer";
    public static final String LAST_LAYER = "last_layer";
    public static final String STREAM_ID = "stream_id";
    public static final String CHANNEL = "aeron_channel";

    /** Expert ids are below this in any model we serve; bounds the parse of untrusted metadata. */
    private static final int MAX_EXPERT_ID = 1 << 16;

    private ExpertMetadata() {
    }

    /** @param channel the channel the service reads; never null here (a registry has no cluster default) */
    public static Map<String, String> of(ClusterSpec.Expert expert, String channel) {
        BitSet ids = new BitSet();
        expert.experts().forEach(ids::set);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(EXPERTS, IdRanges.format(ids));
        meta.put(FIRST_LAYER, Integer.toString(expert.firstLayer()));
        meta.put(LAST_LAYER, Integer.toString(expert.lastLayer()));
        meta.put(STREAM_ID, Integer.toString(expert.streamId()));
        meta.put(CHANNEL, channel);
        return meta;
    }

    /** The expert service an instance's metadata describes; an error names the instance and the field. */
    public static ClusterSpec.Expert parse(String id, Map<String, String> meta) {
        BitSet ids = IdRanges.parse(require(id, meta, EXPERTS), "service " + id + " meta " + EXPERTS, MAX_EXPERT_ID);
        int first = integer(id, meta, FIRST_LAYER);
        int last = integer(id, meta, LAST_LAYER);
        if (first < 0 || last < first) {
            throw new IllegalArgumentException("service " + id + ": layer range " + first + "-" + last + " in meta");
        }
        return new ClusterSpec.Expert(id, ids.stream().boxed().toList(), first, last, integer(id, meta, STREAM_ID),
                require(id, meta, CHANNEL));
    }

    private static String require(String id, Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("service " + id + ": meta " + key + " is missing");
        }
        return v;
    }

    private static int integer(String id, Map<String, String> meta, String key) {
        String v = require(id, meta, key);
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("service " + id + ": meta " + key + " '" + v + "' is not an integer");
        }
    }
}
