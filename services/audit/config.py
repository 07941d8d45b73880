"""Loading the audit's data once, at a service's or command's start (the only I/O of the audit
logic): protocol mapping, DRL set, k-factor set, target regions, as named by the settings."""
from __future__ import annotations

from typing import Optional

from services.audit.indices import AuditConfig
from services.audit.mapping import load_map
from services.audit.references import load_drl_set, load_k_set, load_target_regions


def load_config(settings, drl_set: Optional[str] = None, k_set: Optional[str] = None) -> AuditConfig:
    """Raises services.audit.references.ReferenceError naming the file and what is wrong."""
    site = settings.reference_dir
    return AuditConfig(protocol_map=load_map(settings.protocol_map),
                       drl=load_drl_set(drl_set or settings.drl_set, site),
                       k=load_k_set(k_set or settings.k_set, site),
                       regions=load_target_regions())
