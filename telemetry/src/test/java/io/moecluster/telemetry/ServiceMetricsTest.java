package io.moecluster.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Issue 13, defect 6: a client that opens a request to /metrics and never finishes it does not
 * block the endpoint. Bounds: a scrape beside one stuck request is answered within 5 s (it takes
 * milliseconds; before, it waited for as long as the stuck client held on); beside more stuck
 * requests than scrape threads, within 30 s (they are dropped after 10 s).
 */
class ServiceMetricsTest {
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    static List<Socket> stuckRequests(int port, int n) throws Exception {
        List<Socket> sockets = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Socket s = new Socket("127.0.0.1", port);
            OutputStream out = s.getOutputStream();
            out.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n".getBytes(StandardCharsets.US_ASCII)); // no blank line
            out.flush();
            sockets.add(s);
        }
        Thread.sleep(200); // the server has them
        return sockets;
    }

    static HttpResponse<String> scrape(int port, Duration timeout) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(timeout).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void anUnfinishedRequestDoesNotBlockTheEndpoint() throws Exception {
        int port = ServiceMetrics.freePort();
        try (ServiceMetrics metrics = ServiceMetrics.start("moe-test", "t-0", "127.0.0.1", port)) {
            metrics.meter().gaugeBuilder("moe.test.value").ofLongs().buildWithCallback(m -> m.record(42));
            List<Socket> stuck = stuckRequests(port, 1);
            HttpResponse<String> r = scrape(port, Duration.ofSeconds(5));
            assertThat(r.statusCode()).isEqualTo(200);
            assertThat(r.body()).contains("moe_test_value").contains("42");
            for (Socket s : stuck) {
                s.close();
            }
        }
    }

    @Test
    void moreStuckRequestsThanThreadsAreDroppedInTime() throws Exception {
        int port = ServiceMetrics.freePort();
        try (ServiceMetrics metrics = ServiceMetrics.start("moe-test", "t-1", "127.0.0.1", port)) {
            metrics.meter().gaugeBuilder("moe.test.value").ofLongs().buildWithCallback(m -> m.record(7));
            List<Socket> stuck = stuckRequests(port, ServiceMetrics.SCRAPE_THREADS + 1);
            HttpResponse<String> r = scrape(port, Duration.ofSeconds(30));
            assertThat(r.statusCode()).isEqualTo(200);
            assertThat(r.body()).contains("moe_test_value");
            for (Socket s : stuck) {
                s.close();
            }
        }
    }
}
