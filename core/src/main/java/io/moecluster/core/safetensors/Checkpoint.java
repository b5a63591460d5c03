package io.moecluster.core.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.model.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The weights of a Hugging Face model directory: {@code model.safetensors}, or the shards listed
 * by {@code model.safetensors.index.json}. Shard headers are opened when a tensor of that shard is
 * first asked for, and tensors are mapped one by one, so a process pays only for what it uses.
 */
public final class Checkpoint implements AutoCloseable {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    /** Tensor name to shard file name; null for a single-file checkpoint. */
    private final Map<String, String> weightMap;
    private final Map<String, SafetensorsFile> openFiles = new ConcurrentHashMap<>();

    private Checkpoint(Path dir, Map<String, String> weightMap) {
        this.dir = dir;
        this.weightMap = weightMap;
    }

    public static Checkpoint open(Path dir) {
        Path index = dir.resolve(INDEX_FILE);
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(index)) {
            return new Checkpoint(dir, readIndex(index));
        }
        if (Files.isRegularFile(single)) {
            Checkpoint c = new Checkpoint(dir, null);
            c.file(SINGLE_FILE); // validate the header now: a broken file should fail at startup
            return c;
        }
        throw new ModelFormatException(dir + ": no " + SINGLE_FILE + " or " + INDEX_FILE + " found");
    }

    private static Map<String, String> readIndex(Path index) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(index));
        } catch (IOException e) {
            throw new ModelFormatException(index + ": cannot parse JSON: " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new ModelFormatException(index + ": missing object 'weight_map'");
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String shard = e.getValue().asText();
            if (!e.getValue().isTextual() || shard.contains("/") || shard.contains("\\") || shard.isEmpty()) {
                throw new ModelFormatException(index + ": tensor '" + e.getKey() + "' maps to bad shard name " + e.getValue());
            }
            weightMap.put(e.getKey(), shard);
        }
        return weightMap;
    }

    public Path dir() {
        return dir;
    }

    public boolean isSharded() {
        return weightMap != null;
    }

    /** All tensor names: from the index when sharded (no shard is opened), else from the header. */
    public Set<String> tensorNames() {
        return weightMap != null ? weightMap.keySet() : file(SINGLE_FILE).tensors().keySet();
    }

    public boolean contains(String name) {
        return weightMap != null ? weightMap.containsKey(name) : file(SINGLE_FILE).tensors().containsKey(name);
    }

    /** The header entry of a tensor; fails naming the tensor and where it was looked for. */
    public TensorInfo info(String name) {
        String fileName = weightMap != null ? weightMap.get(name) : SINGLE_FILE;
        if (fileName == null) {
            throw new ModelFormatException(dir.resolve(INDEX_FILE) + ": tensor '" + name + "' is missing from weight_map");
        }
        SafetensorsFile f = file(fileName);
        TensorInfo info = f.info(name);
        if (info == null) {
            throw new ModelFormatException(f.path() + ": tensor '" + name + "' is missing");
        }
        return info;
    }

    /** The header entry of a tensor, checked against the shape the config implies. */
    public TensorInfo info(String name, long... expectedShape) {
        TensorInfo info = info(name);
        if (!info.hasShape(expectedShape)) {
            throw new ModelFormatException(info.file() + ": tensor '" + name + "' has shape " + info.shapeString()
                    + " but the config implies " + Arrays.toString(expectedShape));
        }
        return info;
    }

    public MemorySegment map(TensorInfo info) {
        String fileName = info.file().getFileName().toString();
        return file(fileName).map(info);
    }

    private SafetensorsFile file(String fileName) {
        return openFiles.computeIfAbsent(fileName, n -> {
            Path p = dir.resolve(n);
            if (!Files.isRegularFile(p)) {
                throw new ModelFormatException(p + ": shard listed in " + INDEX_FILE + " does not exist");
            }
            return SafetensorsFile.open(p);
        });
    }

    @Override
    public void close() {
        List<RuntimeException> errors = new ArrayList<>();
        for (SafetensorsFile f : openFiles.values()) {
            try {
                f.close();
            } catch (RuntimeException e) {
                errors.add(e);
            }
        }
        openFiles.clear();
        if (!errors.isEmpty()) {
            throw errors.getFirst();
        }
    }
}
