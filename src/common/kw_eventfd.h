/*
 * Eventfd wake-ups shared by the client, the key server and the proxy: signal (make readable)
 * and drain (make quiet again). Both retry on EINTR; neither blocks on a non-blocking eventfd.
 */
#ifndef KW_EVENTFD_H
#define KW_EVENTFD_H

/* Adds 1 to the counter: fd becomes readable. Fails only on counter overflow (ignored). */
void kw_eventfd_signal(int fd);

/* Reads the counter back to 0; nothing to read (EAGAIN) is fine. */
void kw_eventfd_drain(int fd);

#endif /* KW_EVENTFD_H */
