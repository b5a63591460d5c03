package io.moecluster.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import io.moecluster.cli.MoeCommand;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.IdRanges;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

/**
 * The structure of the Kubernetes manifests under {@code orchestration/deploy/kubernetes}: what
 * {@code kubectl apply -k} would need to get right, checked without a cluster.
 */
class KubernetesManifestsTest {
    private static final Path DIR = Path.of(System.getProperty("user.dir"), "deploy", "kubernetes");
    /** The repository root: the orchestration module's parent. */
    private static final Path ROOT = Path.of(System.getProperty("user.dir")).toAbsolutePath().getParent();
    /** The image's user and group (scripts/image/Containerfile), which the pods run as. */
    private static final int IMAGE_UID = 10001;
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final Pattern VAR_REF = Pattern.compile("\\$\\(([A-Za-z_][A-Za-z0-9_]*)\\)");
    private static final int EXPERTS = 8;

    /** One object of one file. */
    record Doc(String file, JsonNode node) {
        String kind() {
            return node.path("kind").asText();
        }

        String name() {
            return node.path("metadata").path("name").asText();
        }

        @Override
        public String toString() {
            return file + ": " + kind() + " " + name();
        }
    }

    private static List<Doc> docs;
    private static JsonNode kustomization;

    @BeforeAll
    static void read() throws IOException {
        assertThat(DIR).isDirectory();
        docs = new ArrayList<>();
        try (Stream<Path> files = Files.list(DIR)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                List<JsonNode> nodes = readAll(f);
                if (f.getFileName().toString().equals("kustomization.yaml")) {
                    kustomization = nodes.getFirst();
                    continue;
                }
                nodes.forEach(n -> docs.add(new Doc(f.getFileName().toString(), n)));
            }
        }
        assertThat(kustomization).as("kustomization.yaml").isNotNull();
    }

    private static List<JsonNode> readAll(Path f) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        try (YAMLParser p = (YAMLParser) YAML.getFactory().createParser(f.toFile())) {
            var it = YAML.readValues(p, JsonNode.class);
            while (it.hasNext()) {
                JsonNode n = it.next();
                if (n != null && !n.isNull() && !n.isMissingNode()) {
                    out.add(n);
                }
            }
        }
        return out;
    }

    private static List<Doc> ofKind(String... kinds) {
        Set<String> k = Set.of(kinds);
        return docs.stream().filter(d -> k.contains(d.kind())).toList();
    }

    private static List<Doc> workloads() {
        return ofKind("Deployment", "StatefulSet");
    }

    private static JsonNode podSpec(Doc workload) {
        return workload.node().path("spec").path("template").path("spec");
    }

    private static Map<String, String> map(JsonNode n) {
        Map<String, String> m = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asText()));
        return m;
    }

    private static Map<String, String> templateLabels(Doc workload) {
        return map(workload.node().path("spec").path("template").path("metadata").path("labels"));
    }

    private static boolean selects(Map<String, String> selector, Map<String, String> labels) {
        return !selector.isEmpty() && labels.entrySet().containsAll(selector.entrySet());
    }

    /** The containers that run a moe service (not the media-driver sidecar). */
    private static List<JsonNode> serviceContainers(Doc workload) {
        List<JsonNode> out = new ArrayList<>();
        podSpec(workload).path("containers").forEach(c -> {
            if (!isMediaDriver(c)) {
                out.add(c);
            }
        });
        return out;
    }

    private static boolean isMediaDriver(JsonNode c) {
        List<String> args = args(c);
        return args.size() >= 2 && args.get(0).equals("serve") && args.get(1).equals("media-driver");
    }

    private static List<String> args(JsonNode container) {
        List<String> a = new ArrayList<>();
        container.path("args").forEach(x -> a.add(x.asText()));
        return a;
    }

    private static String flag(List<String> args, String name) {
        int i = args.indexOf(name);
        assertThat(i).as("flag %s in %s", name, args).isNotNegative();
        assertThat(i + 1).as("value of %s in %s", name, args).isLessThan(args.size());
        return args.get(i + 1);
    }

    private static Set<Integer> containerPorts(JsonNode container) {
        Set<Integer> ports = new HashSet<>();
        container.path("ports").forEach(p -> ports.add(p.path("containerPort").asInt()));
        return ports;
    }

    private static Set<String> portNames(JsonNode podSpec) {
        Set<String> names = new HashSet<>();
        for (String list : List.of("containers", "initContainers")) {
            podSpec.path(list).forEach(c -> c.path("ports").forEach(p -> names.add(p.path("name").asText())));
        }
        return names;
    }

    private static String role(Doc workload) {
        return templateLabels(workload).get("moe.io/role");
    }

    /** Every container of the workload's pod: init containers (the media-driver sidecar) first. */
    private static List<JsonNode> allContainers(Doc workload) {
        List<JsonNode> all = new ArrayList<>();
        podSpec(workload).path("initContainers").forEach(all::add);
        podSpec(workload).path("containers").forEach(all::add);
        return all;
    }

    /** The Maven project version in the root pom.xml: the tag scripts/build-image.sh gives the image. */
    private static String projectVersion() throws Exception {
        Element project = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(ROOT.resolve("pom.xml").toFile()).getDocumentElement();
        for (Node n = project.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals("version")) {
                return e.getTextContent().trim();
            }
        }
        throw new AssertionError("no <version> in " + ROOT.resolve("pom.xml"));
    }

    // ---------------------------------------------------------------- tests

    @Test
    void kustomizationListsEveryFileAndNothingElse() throws IOException {
        Set<String> listed = new TreeSet<>();
        kustomization.path("resources").forEach(r -> listed.add(r.asText()));
        Set<String> present = new TreeSet<>();
        try (Stream<Path> files = Files.list(DIR)) {
            files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".yaml") || n.endsWith(".yml"))
                    .filter(n -> !n.equals("kustomization.yaml"))
                    .forEach(present::add);
        }
        assertThat(listed).isEqualTo(present);
        assertThat(kustomization.path("kind").asText()).isEqualTo("Kustomization");
    }

    @Test
    void everyDocumentHasApiVersionKindAndName() {
        assertThat(docs).isNotEmpty();
        assertThat(docs).allSatisfy(d -> {
            assertThat(d.node().path("apiVersion").asText()).as("%s apiVersion", d).isNotBlank();
            assertThat(d.kind()).as("%s kind", d).isNotBlank();
            assertThat(d.name()).as("%s metadata.name", d).isNotBlank();
            if (!d.kind().equals("Namespace")) {
                assertThat(d.node().path("metadata").path("namespace").asText()).as("%s namespace", d).isEqualTo("moe");
            }
        });
        Set<String> seen = new HashSet<>();
        assertThat(docs).allSatisfy(d -> assertThat(seen.add(d.kind() + "/" + d.name())).as("unique %s", d).isTrue());
        assertThat(ofKind("Namespace")).extracting(Doc::name).containsExactly("moe");
    }

    @Test
    void oneExpertDeploymentPerGroupCoversEveryExpertExactlyOnce() {
        List<Doc> experts = workloads().stream().filter(w -> "expert".equals(role(w))).toList();
        assertThat(experts).hasSizeGreaterThanOrEqualTo(2);
        BitSet covered = new BitSet();
        Set<String> groups = new HashSet<>();
        Set<String> streams = new HashSet<>();
        for (Doc d : experts) {
            assertThat(d.kind()).as("%s", d).isEqualTo("Deployment");
            String group = templateLabels(d).get("moe.io/expert-group");
            assertThat(group).as("%s moe.io/expert-group", d).isNotBlank();
            assertThat(groups.add(group)).as("group %s once", group).isTrue();
            assertThat(map(d.node().path("spec").path("selector").path("matchLabels")))
                    .as("%s selects only its own group", d).containsEntry("moe.io/expert-group", group);
            List<JsonNode> containers = serviceContainers(d);
            assertThat(containers).as("%s service containers", d).hasSize(1);
            List<String> args = args(containers.getFirst());
            assertThat(args.subList(0, 2)).containsExactly("serve", "expert");
            String ids = flag(args, "--experts");
            assertThat(ids).as("%s: --experts matches its group label", d).isEqualTo(group);
            BitSet mine = IdRanges.parse(ids, d + " --experts", EXPERTS);
            assertThat(covered.intersects(mine)).as("%s overlaps another group: %s", d, ids).isFalse();
            covered.or(mine);
            assertThat(flag(args, "--layers")).isEqualTo("0-31");
            assertThat(streams.add(flag(args, "--stream-id"))).as("%s stream id distinct", d).isTrue();
        }
        BitSet all = new BitSet();
        all.set(0, EXPERTS);
        assertThat(covered).as("experts 0-7").isEqualTo(all);
    }

    @Test
    void everyWorkloadSelectorMatchesItsTemplateAndNoOtherWorkloadsPods() {
        List<Doc> workloads = workloads();
        assertThat(workloads).extracting(Doc::kind).contains("Deployment", "StatefulSet");
        for (Doc w : workloads) {
            Map<String, String> selector = map(w.node().path("spec").path("selector").path("matchLabels"));
            assertThat(selects(selector, templateLabels(w))).as("%s selector %s vs template labels", w, selector).isTrue();
            for (Doc other : workloads) {
                if (other != w) {
                    assertThat(selects(selector, templateLabels(other))).as("%s also selects %s's pods", w, other)
                            .isFalse();
                }
            }
        }
    }

    @Test
    void everyServiceSelectsPodsThatExistOnPortsTheyDeclare() {
        List<Doc> services = ofKind("Service");
        assertThat(services).isNotEmpty();
        for (Doc s : services) {
            Map<String, String> selector = map(s.node().path("spec").path("selector"));
            List<Doc> targets = workloads().stream().filter(w -> selects(selector, templateLabels(w))).toList();
            assertThat(targets).as("%s selects %s", s, selector).isNotEmpty();
            s.node().path("spec").path("ports").forEach(p -> {
                JsonNode target = p.path("targetPort");
                for (Doc w : targets) {
                    if (target.isTextual()) {
                        assertThat(portNames(podSpec(w))).as("%s targetPort %s in %s", s, target.asText(), w)
                                .contains(target.asText());
                    }
                }
            });
        }
        // the router is public on 50051 (gRPC) and 8000 (the OpenAI-compatible API); StatefulSets name their headless Service
        Doc router = services.stream().filter(s -> s.name().equals("moe-router")).findFirst().orElseThrow();
        List<Integer> ports = new ArrayList<>();
        router.node().path("spec").path("ports").forEach(p -> ports.add(p.path("port").asInt()));
        assertThat(ports).contains(50051, 8000);
        for (Doc sts : ofKind("StatefulSet")) {
            String svc = sts.node().path("spec").path("serviceName").asText();
            assertThat(services).as("%s serviceName %s", sts, svc).anySatisfy(s -> {
                assertThat(s.name()).isEqualTo(svc);
                assertThat(s.node().path("spec").path("clusterIP").asText()).isEqualTo("None");
            });
        }
    }

    @Test
    void everyServiceContainerHasGrpcProbesOnADeclaredPort() {
        for (Doc w : workloads()) {
            List<JsonNode> containers = serviceContainers(w);
            assertThat(containers).as("%s", w).isNotEmpty();
            for (JsonNode c : containers) {
                Set<Integer> declared = containerPorts(c);
                // With TLS on the service's ports, probes (which speak no TLS) go to the plaintext --health-port.
                int grpcPort = Integer.parseInt(flagOr(args(c), "--health-port", flagOr(args(c), "--grpc-port", "-1")));
                for (String probe : List.of("startupProbe", "readinessProbe", "livenessProbe")) {
                    JsonNode grpc = c.path(probe).path("grpc");
                    assertThat(grpc.isObject()).as("%s %s: a grpc probe", w, probe).isTrue();
                    int port = grpc.path("port").asInt();
                    assertThat(declared).as("%s %s port", w, probe).contains(port);
                    if (grpcPort > 0) {
                        assertThat(port).as("%s %s probes --health-port (else --grpc-port)", w, probe)
                                .isEqualTo(grpcPort);
                    }
                }
                assertThat(c.path("lifecycle").path("preStop").isObject()).as("%s preStop", w).isTrue();
                assertThat(c.path("resources").path("requests").path("cpu").isMissingNode()).as("%s cpu request", w)
                        .isFalse();
                assertThat(c.path("resources").path("limits").path("memory").isMissingNode()).as("%s memory limit", w)
                        .isFalse();
            }
            assertThat(podSpec(w).path("terminationGracePeriodSeconds").asInt()).as("%s grace", w)
                    .isGreaterThanOrEqualTo(35);
        }
    }

    private static String flagOr(List<String> args, String name, String otherwise) {
        int i = args.indexOf(name);
        return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : otherwise;
    }

    @Test
    void expertContainersAskForAGpu() {
        for (Doc w : workloads()) {
            if (!"expert".equals(role(w))) {
                continue;
            }
            for (JsonNode c : serviceContainers(w)) {
                assertThat(c.path("resources").path("limits").path("nvidia.com/gpu").asInt()).as("%s gpu limit", w)
                        .isGreaterThanOrEqualTo(1);
            }
        }
    }

    @Test
    void everyPodHasTheMediaDriverSidecarSharingAMemoryBackedDevShm() {
        for (Doc w : workloads()) {
            JsonNode spec = podSpec(w);
            List<JsonNode> drivers = new ArrayList<>();
            spec.path("initContainers").forEach(c -> {
                if (isMediaDriver(c)) {
                    assertThat(c.path("restartPolicy").asText()).as("%s: a native sidecar keeps running", w)
                            .isEqualTo("Always");
                    drivers.add(c);
                }
            });
            spec.path("containers").forEach(c -> {
                if (isMediaDriver(c)) {
                    drivers.add(c);
                }
            });
            assertThat(drivers).as("%s media-driver", w).hasSize(1);
            assertThat(flag(args(drivers.getFirst()), "--cluster")).isEqualTo("/etc/moe/cluster.json");

            String shm = null;
            for (JsonNode v : spec.path("volumes")) {
                if (v.path("emptyDir").path("medium").asText().equals("Memory")) {
                    shm = v.path("name").asText();
                }
            }
            assertThat(shm).as("%s: an emptyDir with medium Memory", w).isNotNull();
            List<JsonNode> sharing = new ArrayList<>(drivers);
            sharing.addAll(serviceContainers(w));
            for (JsonNode c : sharing) {
                String name = shm;
                assertThat(c.path("volumeMounts")).as("%s %s mounts %s at /dev/shm", w, c.path("name").asText(), shm)
                        .anySatisfy(m -> {
                            assertThat(m.path("name").asText()).isEqualTo(name);
                            assertThat(m.path("mountPath").asText()).isEqualTo("/dev/shm");
                        });
            }
        }
    }

    @Test
    void serviceContainersFindConsulOnTheirNodeAndKnowTheirPod() {
        for (Doc w : workloads()) {
            for (JsonNode c : serviceContainers(w)) {
                Map<String, JsonNode> env = new LinkedHashMap<>();
                c.path("env").forEach(e -> env.put(e.path("name").asText(), e));
                assertThat(env).as("%s env", w).containsKeys("CONSUL_HTTP_ADDR", "HOST_IP", "POD_NAME", "POD_IP");
                assertThat(env.get("HOST_IP").path("valueFrom").path("fieldRef").path("fieldPath").asText())
                        .isEqualTo("status.hostIP");
                assertThat(env.get("POD_NAME").path("valueFrom").path("fieldRef").path("fieldPath").asText())
                        .isEqualTo("metadata.name");
                assertThat(env.get("POD_IP").path("valueFrom").path("fieldRef").path("fieldPath").asText())
                        .isEqualTo("status.podIP");
                assertThat(env.get("CONSUL_HTTP_ADDR").path("value").asText()).isEqualTo("http://$(HOST_IP):8500");
                List<String> order = new ArrayList<>(env.keySet());
                assertThat(order.indexOf("HOST_IP")).as("%s: HOST_IP defined before it is used", w)
                        .isLessThan(order.indexOf("CONSUL_HTTP_ADDR"));
            }
        }
    }

    /**
     * Security (README, Security): every service has TLS from the Secret moe-tls with its CA (mutual
     * TLS), the data-plane secret from the Secret moe-data-plane, both mounted read-only where the
     * flags point; the router also the API tokens of moe-api-tokens. Nothing is optional: a missing
     * Secret keeps the pod from starting instead of running it unauthenticated.
     */
    @Test
    void everyServiceHasTlsAndTheDataPlaneSecretFromSecrets() {
        for (Doc w : workloads()) {
            Map<String, JsonNode> volumes = new HashMap<>();
            podSpec(w).path("volumes").forEach(v -> volumes.put(v.path("name").asText(), v));
            for (JsonNode c : serviceContainers(w)) {
                List<String> args = args(c);
                Map<String, String> mounts = new HashMap<>();
                c.path("volumeMounts").forEach(m -> {
                    assertThat(m.path("readOnly").asBoolean(false) || !m.path("mountPath").asText().startsWith("/etc/moe-"))
                            .as("%s %s read-only", w, m.path("mountPath").asText()).isTrue();
                    mounts.put(m.path("mountPath").asText(), m.path("name").asText());
                });
                Map<String, String> files = new LinkedHashMap<>();
                files.put(flag(args, "--tls-cert"), "moe-tls");
                files.put(flag(args, "--tls-key"), "moe-tls");
                files.put(flag(args, "--tls-ca"), "moe-tls");
                Map<String, JsonNode> env = new LinkedHashMap<>();
                c.path("env").forEach(e -> env.put(e.path("name").asText(), e));
                assertThat(env).as("%s env", w).containsKey("MOE_DATA_PLANE_SECRET_FILE");
                files.put(env.get("MOE_DATA_PLANE_SECRET_FILE").path("value").asText(), "moe-data-plane");
                if (role(w).equals("router")) {
                    files.put(flag(args, "--api-tokens"), "moe-api-tokens");
                }
                files.forEach((file, secret) -> {
                    String dir = file.substring(0, file.lastIndexOf('/'));
                    assertThat(mounts).as("%s mounts %s", w, dir).containsKey(dir);
                    JsonNode volume = volumes.get(mounts.get(dir));
                    assertThat(volume).as("%s volume of %s", w, dir).isNotNull();
                    assertThat(volume.path("secret").path("secretName").asText()).as("%s %s", w, file).isEqualTo(secret);
                    assertThat(volume.path("secret").path("optional").asBoolean(false)).as("%s %s required", w, file)
                            .isFalse();
                });
                assertThat(containerPorts(c)).as("%s health port", w).contains(Integer.parseInt(flag(args, "--health-port")));
            }
        }
    }

    /**
     * Every JVM has a heap limit (issue 13, defect 6: the router grew to 6.8 GB without one): each
     * service container sets its role's {@code -Xmx} in MOE_JAVA_OPTS (the launcher's JVM options),
     * the media-driver sidecar its own, and the heap is at most half the container's memory limit
     * (the rest: off-heap buffers, Netty, metaspace, thread stacks). Weights, KV caches and
     * activations are off-heap and not bounded by -Xmx. The ConfigMap's common options make an
     * OutOfMemoryError exit the service, so Kubernetes restarts it.
     */
    @Test
    void everyJvmHasAHeapLimitPerRoleWithinItsContainersMemory() {
        Map<String, String> config = map(ofKind("ConfigMap").stream()
                .filter(d -> d.node().path("metadata").path("name").asText().equals("moe-cluster")).findFirst()
                .orElseThrow().node().path("data"));
        Map<String, Long> heapPerRole = new HashMap<>();
        for (Doc w : workloads()) {
            for (JsonNode c : allContainers(w)) {
                String what = w + " " + c.path("name").asText();
                String opts = javaOpts(c, config);
                assertThat(opts).as("%s MOE_JAVA_OPTS", what).isNotNull();
                Matcher xmx = Pattern.compile("(?:^|\\s)-Xmx(\\d+)([kKmMgG]?)(?=\\s|$)").matcher(opts);
                assertThat(xmx.find()).as("%s: -Xmx in MOE_JAVA_OPTS \"%s\"", what, opts).isTrue();
                long heap = Long.parseLong(xmx.group(1)) * switch (xmx.group(2).toLowerCase()) {
                    case "k" -> 1L << 10;
                    case "m" -> 1L << 20;
                    case "g" -> 1L << 30;
                    default -> 1L;
                };
                assertThat(xmx.find()).as("%s: one -Xmx in \"%s\"", what, opts).isFalse();
                assertThat(opts).as("%s: the heap is set by -Xmx alone", what).doesNotContain("MaxRAMPercentage");
                long limit = bytes(c.path("resources").path("limits").path("memory").asText(""));
                assertThat(limit).as("%s memory limit", what).isPositive();
                assertThat(heap).as("%s: -Xmx at most half the memory limit (%d bytes)", what, limit)
                        .isLessThanOrEqualTo(limit / 2);
                if (!isMediaDriver(c)) {
                    assertThat(opts).as("%s", what).contains("-XX:+ExitOnOutOfMemoryError");
                    Long before = heapPerRole.put(role(w), heap);
                    assertThat(before == null || before == heap).as("%s: one heap size per role", what).isTrue();
                }
            }
        }
        assertThat(heapPerRole.keySet()).containsExactlyInAnyOrder("router", "attention", "expert");
    }

    /** A container's MOE_JAVA_OPTS as the kubelet sets it: ConfigMap keys and earlier $(VAR)s resolved. */
    private static String javaOpts(JsonNode container, Map<String, String> config) {
        Map<String, String> env = new HashMap<>();
        for (JsonNode e : container.path("env")) {
            String value;
            if (e.has("value")) {
                Matcher m = VAR_REF.matcher(e.path("value").asText());
                StringBuilder sb = new StringBuilder();
                while (m.find()) {
                    m.appendReplacement(sb, Matcher.quoteReplacement(env.getOrDefault(m.group(1), m.group())));
                }
                value = m.appendTail(sb).toString();
            } else {
                JsonNode ref = e.path("valueFrom").path("configMapKeyRef");
                value = ref.path("name").asText().equals("moe-cluster") ? config.get(ref.path("key").asText()) : null;
            }
            if (value != null) {
                env.put(e.path("name").asText(), value);
            }
        }
        return env.get("MOE_JAVA_OPTS");
    }

    /** A Kubernetes quantity of memory ("512Mi", "8Gi", "1G") in bytes; 0 when empty. */
    private static long bytes(String quantity) {
        Matcher m = Pattern.compile("(\\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?").matcher(quantity);
        if (!m.matches()) {
            return 0;
        }
        long n = Long.parseLong(m.group(1));
        return n * switch (m.group(2) == null ? "" : m.group(2)) {
            case "Ki" -> 1L << 10;
            case "Mi" -> 1L << 20;
            case "Gi" -> 1L << 30;
            case "Ti" -> 1L << 40;
            case "k" -> 1_000L;
            case "M" -> 1_000_000L;
            case "G" -> 1_000_000_000L;
            case "T" -> 1_000_000_000_000L;
            default -> 1L;
        };
    }

    /** Kubernetes leaves {@code $(NAME)} as it is when NAME is not an earlier env var: a silent bug. */
    @Test
    void everyVariableReferenceNamesAnEarlierEnvVar() {
        for (Doc w : workloads()) {
            List<JsonNode> all = new ArrayList<>();
            podSpec(w).path("initContainers").forEach(all::add);
            podSpec(w).path("containers").forEach(all::add);
            for (JsonNode c : all) {
                List<String> declared = new ArrayList<>();
                for (JsonNode e : c.path("env")) {
                    String value = e.path("value").asText("");
                    Matcher m = VAR_REF.matcher(value);
                    while (m.find()) {
                        assertThat(declared).as("%s %s env %s uses $(%s)", w, c.path("name").asText(),
                                e.path("name").asText(), m.group(1)).contains(m.group(1));
                    }
                    declared.add(e.path("name").asText());
                }
                List<String> words = new ArrayList<>(args(c));
                c.path("command").forEach(x -> words.add(x.asText()));
                for (String a : words) {
                    Matcher m = VAR_REF.matcher(a);
                    while (m.find()) {
                        assertThat(declared).as("%s %s args use $(%s)", w, c.path("name").asText(), m.group(1))
                                .contains(m.group(1));
                    }
                }
            }
        }
    }

    /** Every container's command line, media drivers included, is one the real moe command accepts. */
    @Test
    void everyCommandLineParsesWithTheMoeCommand() {
        for (Doc w : workloads()) {
            List<JsonNode> all = new ArrayList<>();
            podSpec(w).path("containers").forEach(all::add);
            podSpec(w).path("initContainers").forEach(all::add);
            for (JsonNode c : all) {
                List<String> args = args(c);
                if (args.isEmpty() || !args.getFirst().equals("serve")) {
                    continue;
                }
                picocli.CommandLine cli = new picocli.CommandLine(new MoeCommand());
                String[] words = args.stream().map(a -> a.replace("$(POD_NAME)", "pod-0")
                        .replace("$(POD_IP)", "10.0.0.5").replace("$(HOST_IP)", "10.0.0.1")).toArray(String[]::new);
                assertThatCode(() -> cli.parseArgs(words)).as("%s %s: moe %s", w, c.path("name").asText(), args)
                        .doesNotThrowAnyException();
            }
        }
    }

    @Test
    void serviceCommandLinesUseTheServeFlagsAndTheReadOnlyModel() {
        Set<String> claims = new HashSet<>();
        ofKind("PersistentVolumeClaim").forEach(d -> claims.add(d.name()));
        Map<String, Integer> roles = new HashMap<>();
        for (Doc w : workloads()) {
            for (JsonNode c : serviceContainers(w)) {
                List<String> args = args(c);
                String role = role(w);
                roles.merge(role, 1, Integer::sum);
                assertThat(args.subList(0, 2)).as("%s", w).containsExactly("serve", role);
                assertThat(flag(args, "--cluster")).isEqualTo("/etc/moe/cluster.json");
                assertThat(flag(args, "--discovery")).isEqualTo("consul");
                assertThat(flag(args, "--metrics-port")).isEqualTo("9464");
                assertThat(containerPorts(c)).contains(9464);
                String model = flag(args, "--model");
                assertThat(model).startsWith("/models/");
                if (!role.equals("router")) {
                    assertThat(flag(args, "--id")).isEqualTo("$(POD_NAME)");
                }
                if (role.equals("expert")) {
                    assertThat(flag(args, "--channel")).isEqualTo("aeron:udp?endpoint=$(POD_IP):40100");
                    assertThat(containerPorts(c)).contains(Integer.parseInt(flag(args, "--grpc-port")));
                }
                assertThat(c.path("volumeMounts")).as("%s /models read-only", w).anySatisfy(m -> {
                    assertThat(m.path("mountPath").asText()).isEqualTo("/models");
                    assertThat(m.path("readOnly").asBoolean()).isTrue();
                });
                assertThat(c.path("volumeMounts")).as("%s cluster file", w)
                        .anySatisfy(m -> assertThat(m.path("mountPath").asText()).isEqualTo("/etc/moe"));
            }
            assertThat(podSpec(w).path("volumes")).as("%s model volume", w).anySatisfy(v -> {
                assertThat(claims).contains(v.path("persistentVolumeClaim").path("claimName").asText());
                assertThat(v.path("persistentVolumeClaim").path("readOnly").asBoolean()).isTrue();
            });
        }
        assertThat(roles.keySet()).containsExactlyInAnyOrder("router", "attention", "expert");
    }

    @Test
    void theConfigMapHoldsAClusterFileWithoutExpertsThatMatchesTheWorkloads(@TempDir Path tmp) throws IOException {
        Doc cm = ofKind("ConfigMap").stream().filter(d -> d.name().equals("moe-cluster")).findFirst().orElseThrow();
        Path file = tmp.resolve("cluster.json");
        Files.writeString(file, cm.node().path("data").path("cluster.json").asText());
        ClusterSpec spec = ClusterSpec.read(file);
        assertThat(spec.experts()).as("experts come from Consul").isEmpty();
        assertThat(spec.embeddedRouter()).isFalse();
        assertThat(spec.aeronDir()).startsWith("/dev/shm/");

        // attention replicas find their entry by pod name: moe-attention-0 .. N-1
        Doc sts = ofKind("StatefulSet").stream().filter(d -> "attention".equals(role(d))).findFirst().orElseThrow();
        int replicas = sts.node().path("spec").path("replicas").asInt();
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < replicas; i++) {
            expected.add(sts.name() + "-" + i);
        }
        assertThat(spec.attention()).extracting(ClusterSpec.Attention::id).containsExactlyElementsOf(expected);
        String headless = sts.node().path("spec").path("serviceName").asText();
        for (ClusterSpec.Attention a : spec.attention()) {
            assertThat(spec.channelOf(a)).contains(a.id() + "." + headless + ".moe.svc.cluster.local");
        }

        // the router's Aeron endpoint is its pod's hostname.subdomain
        Doc router = workloads().stream().filter(d -> "router".equals(role(d))).findFirst().orElseThrow();
        JsonNode pod = podSpec(router);
        assertThat(router.node().path("spec").path("replicas").asInt()).isEqualTo(1);
        assertThat(spec.channelOf(spec.router())).contains(pod.path("hostname").asText() + "."
                + pod.path("subdomain").asText() + ".moe.svc.cluster.local");
        assertThat(ofKind("Service")).anySatisfy(s -> assertThat(s.name()).isEqualTo(pod.path("subdomain").asText()));
        assertThat(cm.node().path("data").path("MOE_LOG_LEVEL").asText()).isNotBlank();
    }
    @Test
    void everyContainerRunsTheImageTheBuildScriptBuilds() throws Exception {
        String version = projectVersion();
        assertThat(ROOT.resolve("scripts/build-image.sh")).isRegularFile();
        for (Doc w : workloads()) {
            for (JsonNode c : allContainers(w)) {
                String name = c.path("name").asText();
                assertThat(c.path("image").asText()).as("%s %s image", w, name).isEqualTo("moe:" + version);
                List<String> command = new ArrayList<>();
                c.path("command").forEach(x -> command.add(x.asText()));
                assertThat(command).as("%s %s: the image's moe on PATH", w, name).containsExactly("moe");
            }
        }
        // the one place to name a registry: kustomize's images entry for "moe", at the same version
        JsonNode images = kustomization.path("images");
        assertThat(images.isArray()).as("kustomization images").isTrue();
        assertThat(images).as("kustomization images").hasSize(1);
        JsonNode moe = images.get(0);
        assertThat(moe.path("name").asText()).isEqualTo("moe");
        assertThat(moe.path("newName").asText()).as("images[moe].newName").isNotBlank();
        assertThat(moe.path("newTag").asText()).as("images[moe].newTag").isEqualTo(version);
    }

    @Test
    void podsRunAsTheImagesNonRootUser() throws IOException {
        assertThat(Files.readString(ROOT.resolve("scripts/image/Containerfile")))
                .as("the image's user").contains("USER " + IMAGE_UID + ":" + IMAGE_UID);
        for (Doc w : workloads()) {
            JsonNode sc = podSpec(w).path("securityContext");
            assertThat(sc.path("runAsNonRoot").asBoolean()).as("%s runAsNonRoot", w).isTrue();
            assertThat(sc.path("runAsUser").asInt()).as("%s runAsUser", w).isEqualTo(IMAGE_UID);
            assertThat(sc.path("runAsGroup").asInt()).as("%s runAsGroup", w).isEqualTo(IMAGE_UID);
            assertThat(sc.path("fsGroup").asInt()).as("%s fsGroup", w).isEqualTo(IMAGE_UID);
            assertThat(sc.path("seccompProfile").path("type").asText()).as("%s seccomp", w).isEqualTo("RuntimeDefault");
            for (JsonNode c : allContainers(w)) {
                JsonNode csc = c.path("securityContext");
                assertThat(csc.path("runAsUser").isMissingNode() || csc.path("runAsUser").asInt() == IMAGE_UID)
                        .as("%s %s does not override the user", w, c.path("name").asText()).isTrue();
                assertThat(csc.path("runAsNonRoot").isMissingNode() || csc.path("runAsNonRoot").asBoolean())
                        .as("%s %s runAsNonRoot", w, c.path("name").asText()).isTrue();
            }
        }
    }

    /**
     * Every container: no privilege escalation, no capabilities, a read-only root file system, and
     * its own writable emptyDir at /tmp (the JVM's perf data and the native libraries it unpacks;
     * not shared, as the JVMs of two containers may have the same pid). Aeron's directory is the
     * memory-backed /dev/shm, checked above.
     */
    @Test
    void containersHaveAReadOnlyRootNoPrivilegesAndTheirOwnTmp() {
        for (Doc w : workloads()) {
            Map<String, JsonNode> volumes = new HashMap<>();
            podSpec(w).path("volumes").forEach(v -> volumes.put(v.path("name").asText(), v));
            Set<String> tmpVolumes = new HashSet<>();
            for (JsonNode c : allContainers(w)) {
                String name = c.path("name").asText();
                JsonNode sc = c.path("securityContext");
                assertThat(sc.path("allowPrivilegeEscalation").isBoolean()).as("%s %s allowPrivilegeEscalation", w, name)
                        .isTrue();
                assertThat(sc.path("allowPrivilegeEscalation").asBoolean()).as("%s %s allowPrivilegeEscalation", w, name)
                        .isFalse();
                assertThat(sc.path("privileged").asBoolean(false)).as("%s %s privileged", w, name).isFalse();
                assertThat(sc.path("readOnlyRootFilesystem").asBoolean()).as("%s %s readOnlyRootFilesystem", w, name)
                        .isTrue();
                List<String> dropped = new ArrayList<>();
                sc.path("capabilities").path("drop").forEach(x -> dropped.add(x.asText()));
                assertThat(dropped).as("%s %s drops capabilities", w, name).contains("ALL");
                assertThat(sc.path("capabilities").path("add").size()).as("%s %s adds capabilities", w, name).isZero();

                List<JsonNode> tmp = new ArrayList<>();
                c.path("volumeMounts").forEach(m -> {
                    if (m.path("mountPath").asText().equals("/tmp")) {
                        tmp.add(m);
                    }
                });
                assertThat(tmp).as("%s %s mounts a volume at /tmp", w, name).hasSize(1);
                String volume = tmp.getFirst().path("name").asText();
                assertThat(tmp.getFirst().path("readOnly").asBoolean(false)).as("%s %s /tmp writable", w, name).isFalse();
                assertThat(volumes).as("%s volume %s", w, volume).containsKey(volume);
                assertThat(volumes.get(volume).path("emptyDir").isObject()).as("%s %s is an emptyDir", w, volume).isTrue();
                assertThat(tmpVolumes.add(volume)).as("%s: /tmp volume %s of one container only", w, volume).isTrue();
            }
        }
    }
}
