import factory
from guardian.shortcuts import assign_perm

from flows.choices import OWNER_PERMS
from flows.models import Edge, TaskFlow, TaskNode

from .accounts import TenantFactory, UserFactory


class FlowFactory(factory.django.DjangoModelFactory):
    """A flow whose owner holds the owner grants, as flows.services.flow_create leaves it."""

    class Meta:
        model = TaskFlow
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"flow {n}")
    owner = factory.SubFactory(UserFactory)
    created_by = factory.SelfAttribute("owner")

    @factory.post_generation
    def owner_grants(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            for perm in OWNER_PERMS:
                assign_perm(perm, obj.owner, obj)


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskNode

    flow = factory.SubFactory(FlowFactory)
    tenant = factory.SelfAttribute("flow.tenant")
    name = factory.Sequence(lambda n: f"node {n}")
    type = "noop"
    config = factory.LazyFunction(dict)


class EdgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Edge

    flow = factory.SubFactory(FlowFactory)
    tenant = factory.SelfAttribute("flow.tenant")
    upstream = factory.SubFactory(NodeFactory, flow=factory.SelfAttribute("..flow"))
    downstream = factory.SubFactory(NodeFactory, flow=factory.SelfAttribute("..flow"))
    branch = None
