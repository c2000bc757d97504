/* user_agent.c: the browser and system of a User-Agent string, for the visitor panel. */
#include "chat/user_agent.h"

#include <stdio.h>
#include <string.h>

/* A browser: the token its version follows, and its name. */
typedef struct browser {
    const char *token;
    const char *name;
} browser_t;

/* Most specific first: Edge and Opera say "Chrome/" too, Chrome says "Safari/". Safari's
 * version is "Version/"; the iOS builds of Chrome and Firefox say CriOS/ and FxiOS/. */
static const browser_t browsers[] = {
    {"Edg/", "Edge"},
    {"EdgA/", "Edge"},
    {"EdgiOS/", "Edge"},
    {"OPR/", "Opera"},
    {"SamsungBrowser/", "Samsung Internet"},
    {"Firefox/", "Firefox"},
    {"FxiOS/", "Firefox"},
    {"CriOS/", "Chrome"},
    {"Chrome/", "Chrome"},
    {"Version/", "Safari"},
};

/* A system: a token that names it, and its name. */
static const browser_t systems[] = {
    {"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iOS"},      {"iPad", "iOS"},
    {"CrOS", "ChromeOS"},   {"Mac OS X", "macOS"},  {"Macintosh", "macOS"}, {"Linux", "Linux"},
};

/* The major version's digits after token in user_agent (at most 5), into version. */
static void major_version(const char *after, char version[8])
{
    size_t n = 0;
    while (n < 5 && after[n] >= '0' && after[n] <= '9') {
        version[n] = after[n];
        n++;
    }
    version[n] = '\0';
}

void kf_user_agent_label(const char *user_agent, char out[KF_USER_AGENT_LABEL_SIZE])
{
    const char *browser = NULL;
    char version[8] = "";
    const char *system = NULL;
    if (user_agent == NULL)
        user_agent = "";
    for (size_t i = 0; i < sizeof browsers / sizeof browsers[0]; i++) {
        const char *at = strstr(user_agent, browsers[i].token);
        /* "Version/" names Safari only beside "Safari/" (other browsers use it too). */
        if (at != NULL && strcmp(browsers[i].name, "Safari") == 0 &&
            strstr(user_agent, "Safari/") == NULL)
            at = NULL;
        if (at != NULL) {
            browser = browsers[i].name;
            major_version(at + strlen(browsers[i].token), version);
            break;
        }
    }
    for (size_t i = 0; i < sizeof systems / sizeof systems[0]; i++) {
        if (strstr(user_agent, systems[i].token) != NULL) {
            system = systems[i].name;
            break;
        }
    }
    if (browser != NULL && system != NULL)
        snprintf(out, KF_USER_AGENT_LABEL_SIZE, "%s%s%s on %s", browser, version[0] ? " " : "",
                 version, system);
    else if (browser != NULL)
        snprintf(out, KF_USER_AGENT_LABEL_SIZE, "%s%s%s", browser, version[0] ? " " : "", version);
    else if (system != NULL)
        snprintf(out, KF_USER_AGENT_LABEL_SIZE, "a browser on %s", system);
    else
        out[0] = '\0';
}
