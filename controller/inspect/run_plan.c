/* run_plan.c - probes and node-local checks of a spec (see include/hostpatrol/run_plan.h). */
#include "hostpatrol/run_plan.h"

#include <string.h>

#include "hostpatrol/alloc.h"

hp_rc run_plan_init(struct run_plan *p, const struct inspection_spec *spec, bool with_local)
{
    size_t n_items = 0, n_local = 0, i, t;

    memset(p, 0, sizeof(*p));
    for (i = 0; i < spec->n_checks; i++) {
        enum check_kind k = spec->checks[i].kind;

        if (k == CHECK_TCP || k == CHECK_TLS)
            n_items += spec->n_targets;
        else if (k == CHECK_HTTP || k == CHECK_DNS)
            n_items++;
        else if (check_kind_is_node_local(k))
            n_local++;
    }
    p->items = hp_calloc(n_items + 1, sizeof(*p->items));
    p->local = hp_calloc(n_local + 1, sizeof(*p->local));
    if (!p->items || !p->local) {
        run_plan_release(p);
        return HP_ERR_NOMEM;
    }
    for (i = 0; i < spec->n_checks; i++) {
        const struct check_spec *c = &spec->checks[i];

        if (c->kind == CHECK_TCP || c->kind == CHECK_TLS)
            for (t = 0; t < spec->n_targets; t++)
                p->items[p->n_items++] = (struct probe_item){c, &spec->targets[t]};
        else if (c->kind == CHECK_HTTP || c->kind == CHECK_DNS)
            p->items[p->n_items++] = (struct probe_item){c, NULL};
        else if (check_kind_is_node_local(c->kind) && with_local)
            p->local[p->n_local++] = c;
        else if (c->kind == CHECK_NODE_CONDITION)
            p->n_node_conditions++;
    }
    return HP_OK;
}

void run_plan_release(struct run_plan *p)
{
    if (!p)
        return;
    hp_free(p->items);
    hp_free(p->local);
    memset(p, 0, sizeof(*p));
}
