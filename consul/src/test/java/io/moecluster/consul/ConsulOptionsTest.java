package io.moecluster.consul;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ConsulOptionsTest {
    @Test
    void addressComesFromConsulHttpAddrElseTheLocalAgent() {
        assertThat(ConsulOptions.fromEnvironment(Map.of()).address()).isEqualTo(URI.create("http://127.0.0.1:8500"));
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_ADDR", "10.1.2.3:8500")).address())
                .isEqualTo(URI.create("http://10.1.2.3:8500"));
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_ADDR", "http://consul.service:8500")).address())
                .isEqualTo(URI.create("http://consul.service:8500"));
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_ADDR", "https://consul.example:8501/")).address())
                .isEqualTo(URI.create("https://consul.example:8501"));
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_ADDR", "consul.example:8501",
                "CONSUL_HTTP_SSL", "true")).address()).isEqualTo(URI.create("https://consul.example:8501"));
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_ADDR", "consul.local")).address())
                .isEqualTo(URI.create("http://consul.local:8500"));
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_ADDR", "[::1]:8500")).address())
                .isEqualTo(URI.create("http://[::1]:8500"));
    }

    @Test
    void badAddressesAreRefusedWithTheAddress() {
        assertThatThrownBy(() -> ConsulOptions.parseAddress("unix:///var/run/consul.sock", false))
                .hasMessageContaining("unix");
        assertThatThrownBy(() -> ConsulOptions.parseAddress("ftp://consul:21", false))
                .hasMessageContaining("ftp://consul:21");
        assertThatThrownBy(() -> ConsulOptions.parseAddress("http://", false)).hasMessageContaining("http://");
    }

    @Test
    void tokenComesFromConsulHttpTokenAndNeverPrints() {
        ConsulOptions o = ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_TOKEN", "s3cr3t"));
        assertThat(o.token()).isEqualTo("s3cr3t");
        assertThat(o.toString()).doesNotContain("s3cr3t");
        assertThat(ConsulOptions.fromEnvironment(Map.of("CONSUL_HTTP_TOKEN", " ")).token()).isNull();
        assertThat(ConsulOptions.fromEnvironment(Map.of()).token()).isNull();
    }

    @Test
    void defaultsAndDurationsAsConsulReadsThem() {
        ConsulOptions o = ConsulOptions.fromEnvironment(Map.of());
        assertThat(o.ttl()).isEqualTo(Duration.ofSeconds(10));
        assertThat(o.heartbeatInterval()).isEqualTo(Duration.ofSeconds(10).dividedBy(3));
        assertThat(o.deregisterCriticalAfter()).isEqualTo(Duration.ofMinutes(1));
        assertThat(ConsulOptions.goDuration(Duration.ofSeconds(10))).isEqualTo("10s");
        assertThat(ConsulOptions.goDuration(Duration.ofMinutes(1))).isEqualTo("60s");
        assertThat(ConsulOptions.goDuration(Duration.ofMillis(300))).isEqualTo("300ms");
        assertThat(ConsulOptions.waitSeconds(Duration.ofMillis(300))).isEqualTo("1s");
        assertThat(ConsulOptions.waitSeconds(Duration.ofSeconds(30))).isEqualTo("30s");
        assertThatThrownBy(() -> o.withWatchWait(Duration.ofMinutes(11))).hasMessageContaining("10 minutes");
        assertThatThrownBy(() -> o.withTtl(Duration.ZERO)).hasMessageContaining("ttl");
    }
}
