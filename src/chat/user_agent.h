/* user_agent.h: a short label for a browser's User-Agent string, as the visitor panel shows it
 * ("Chrome 120 on Linux"). The string comes from the visitor's page (navigator.userAgent):
 * untrusted, so the label is built only from the names below and the version's digits. */
#ifndef KF_CHAT_USER_AGENT_H
#define KF_CHAT_USER_AGENT_H

#include <stddef.h>

/* Longest label, NUL included. */
#define KF_USER_AGENT_LABEL_SIZE 64

/* Writes the label of user_agent into out: "<browser> <major version> on <system>", with either
 * half left out when it is not recognised, and "" when neither is. Recognises Edge, Opera,
 * Samsung Internet, Firefox, Chrome and Safari (in that order: each later one's token appears in
 * the earlier ones' strings) and Windows, Android, iOS, ChromeOS, macOS and Linux. */
void kf_user_agent_label(const char *user_agent, char out[KF_USER_AGENT_LABEL_SIZE]);

#endif
