package io.moecluster.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Test;

class JvmOptionsTest {
    @Test
    void theLauncherJarCarriesTheRepositoryOptions() {
        assertThat(JvmOptions.read()).contains("--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED")
                .allSatisfy(option -> assertThat(option).startsWith("-").doesNotContain(" "));
    }

    /** The tests run with the very options moe up hands to each service (surefire reads jvm.options too). */
    @Test
    void testsRunWithTheSameOptions() {
        assertThat(ManagementFactory.getRuntimeMXBean().getInputArguments()).containsAll(JvmOptions.read());
    }

    @Test
    void commentsAndBlankLinesAreNotOptions() {
        assertThat(JvmOptions.parse("# why\n\n  -Xss2m  \n#-XX:+Nope\n--add-modules=a\n"))
                .containsExactly("-Xss2m", "--add-modules=a");
    }
}
