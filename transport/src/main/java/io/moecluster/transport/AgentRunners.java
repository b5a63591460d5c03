package io.moecluster.transport;

import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.IdleStrategy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Starts the services' {@link Agent}s on their own daemon threads, with errors logged and counted. */
public final class AgentRunners {
    private static final Logger LOG = LoggerFactory.getLogger(AgentRunners.class);

    private AgentRunners() {
    }

    /**
     * Runs {@code agent} on a daemon thread named after its role, idling by {@code idle} when a duty
     * cycle found no work. An exception out of {@link Agent#doWork()} is logged and the agent keeps
     * running. Closing the runner stops the thread and calls {@link Agent#onClose()} on it.
     */
    public static AgentRunner start(Agent agent, IdleStrategy idle) {
        AtomicLong errors = new AtomicLong();
        AgentRunner runner = new AgentRunner(idle, e -> {
            long n = errors.incrementAndGet();
            if (Long.bitCount(n) == 1) { // 1st, 2nd, 4th, 8th...: a failing loop must not flood the log
                LOG.error("{}: duty cycle failed ({} so far)", agent.roleName(), n, e);
            }
        }, null, agent);
        AgentRunner.startOnThread(runner, r -> {
            Thread t = new Thread(r, agent.roleName());
            t.setDaemon(true);
            return t;
        });
        return runner;
    }
}
