/**
 * Token rows between GPUs with NCCL: an all-to-all with per-peer row counts inside one NCCL group
 * ({@link io.moecluster.cuda.exchange.NcclExchange}, planned by
 * {@link io.moecluster.cuda.exchange.ExchangePlan}), and the communicator's unique id handed from
 * the rank that made it to the others ({@link io.moecluster.cuda.exchange.NcclIdFile}). The Aeron
 * message of a batch carries its header, routing metadata and trace context; the rows themselves
 * would travel here. Not yet wired into the data plane: see the README's GPU section.
 */
package io.moecluster.cuda.exchange;
