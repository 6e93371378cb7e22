package prismnet

import "time"

// Statuses. VPCs and subnets are active once stored. A port is DOWN until
// it is bound to a host, BUILD while that host's agent wires it, ACTIVE
// once its device is on the VPC's bridge with its security groups applied,
// and ERROR (with status_reason) when the agent cannot wire it.
const (
	StatusActive = "active"
	PortDown     = "DOWN"
	PortBuild    = "BUILD"
	PortActive   = "ACTIVE"
	PortError    = "ERROR"
)

// Interface types a port can be bound to.
const (
	IfTap  = "tap"
	IfVeth = "veth"
)

// Security group rule directions and protocols.
const (
	Ingress  = "ingress"
	Egress   = "egress"
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
	ICMP     = "icmp"
	ProtoAny = "any"
)

// VPC is one tenant's isolated network: an IPv4 range its subnets share.
type VPC struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	OrgID       string `json:"org_id"`
	ProjectID   string `json:"project_id"`
	CIDRBlock   string `json:"cidr_block"`
	Description string `json:"description,omitempty"`
	// VNI is the VXLAN network identifier the data plane carries the
	// VPC's traffic between nodes under; unique among VPCs.
	VNI       uint32    `json:"vni"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Subnet is a range of a VPC that ports take addresses from.
type Subnet struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	VPCID       string    `json:"vpc_id"`
	OrgID       string    `json:"org_id"`
	ProjectID   string    `json:"project_id"`
	CIDRBlock   string    `json:"cidr_block"`
	GatewayIP   string    `json:"gateway_ip"`
	Description string    `json:"description,omitempty"`
	DNSServers  []string  `json:"dns_servers"`
	DHCPEnabled bool      `json:"dhcp_enabled"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
}

// Port is an attachment point in a subnet: one IP address and one MAC,
// filtered by its security groups.
type Port struct {
	ID               string    `json:"id"`
	Name             string    `json:"name,omitempty"`
	SubnetID         string    `json:"subnet_id"`
	VPCID            string    `json:"vpc_id"`
	OrgID            string    `json:"org_id"`
	ProjectID        string    `json:"project_id"`
	IP               string    `json:"ip"`
	MACAddress       string    `json:"mac_address"`
	SecurityGroupIDs []string  `json:"security_group_ids"`
	DeviceID         string    `json:"device_id,omitempty"`
	DeviceOwner      string    `json:"device_owner,omitempty"`
	Binding          *Binding  `json:"binding,omitempty"`
	Status           string    `json:"status"`
	StatusReason     string    `json:"status_reason,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// Binding is where a port's device is: a tap or veth end named IfName on
// the node Host, which that node's agent attaches to the VPC's bridge.
type Binding struct {
	Host          string    `json:"host"`
	InterfaceType string    `json:"interface_type"`
	IfName        string    `json:"ifname"`
	BoundAt       time.Time `json:"bound_at"`
}

// BindPortRequest is the body of POST /api/v1/ports/{id}/bind.
type BindPortRequest struct {
	Host          string `json:"host"`
	InterfaceType string `json:"interface_type"`
	IfName        string `json:"ifname"`
}

// Node is a host running PrismNET's agent, as it registers itself: the
// address other nodes send its VXLAN traffic to. The record lives on the
// agent's lease, so a node whose agent stops disappears.
type Node struct {
	Name      string    `json:"name"`
	VTEP      string    `json:"vtep_ip"`
	Version   string    `json:"version,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// NodeList is a page of nodes.
type NodeList struct {
	Nodes []Node `json:"nodes"`
}

// SecurityGroup is a project's set of stateful firewall rules; traffic a
// rule does not allow is dropped.
type SecurityGroup struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	OrgID       string    `json:"org_id"`
	ProjectID   string    `json:"project_id"`
	Description string    `json:"description,omitempty"`
	IsDefault   bool      `json:"is_default"`
	Rules       []Rule    `json:"rules"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Rule allows traffic in one direction: a protocol, for tcp and udp a port
// range, from or to a CIDR or the members of a group.
type Rule struct {
	ID            string `json:"id"`
	Direction     string `json:"direction"`
	Protocol      string `json:"protocol"`
	PortRangeMin  *int   `json:"port_range_min,omitempty"`
	PortRangeMax  *int   `json:"port_range_max,omitempty"`
	RemoteCIDR    string `json:"remote_cidr,omitempty"`
	RemoteGroupID string `json:"remote_group_id,omitempty"`
	Description   string `json:"description,omitempty"`
}

// CreateVPCRequest is the body of POST /api/v1/vpcs.
type CreateVPCRequest struct {
	Name        string `json:"name"`
	OrgID       string `json:"org_id"`
	ProjectID   string `json:"project_id"`
	CIDRBlock   string `json:"cidr_block"`
	Description string `json:"description"`
}

// CreateSubnetRequest is the body of POST /api/v1/subnets.
type CreateSubnetRequest struct {
	Name        string   `json:"name"`
	VPCID       string   `json:"vpc_id"`
	CIDRBlock   string   `json:"cidr_block"`
	GatewayIP   string   `json:"gateway_ip"`
	Description string   `json:"description"`
	DNSServers  []string `json:"dns_servers"`
	DHCPEnabled *bool    `json:"dhcp_enabled"`
}

// CreatePortRequest is the body of POST /api/v1/ports.
type CreatePortRequest struct {
	Name             string   `json:"name"`
	SubnetID         string   `json:"subnet_id"`
	IP               string   `json:"ip"`
	SecurityGroupIDs []string `json:"security_group_ids"`
	DeviceID         string   `json:"device_id"`
	DeviceOwner      string   `json:"device_owner"`
}

// CreateSecurityGroupRequest is the body of POST /api/v1/security-groups.
type CreateSecurityGroupRequest struct {
	Name        string `json:"name"`
	OrgID       string `json:"org_id"`
	ProjectID   string `json:"project_id"`
	Description string `json:"description"`
}

// CreateRuleRequest is the body of POST /api/v1/security-groups/{id}/rules.
type CreateRuleRequest struct {
	Direction     string `json:"direction"`
	Protocol      string `json:"protocol"`
	PortRangeMin  *int   `json:"port_range_min"`
	PortRangeMax  *int   `json:"port_range_max"`
	RemoteCIDR    string `json:"remote_cidr"`
	RemoteGroupID string `json:"remote_group_id"`
	Description   string `json:"description"`
}

// VPCList is a page of VPCs.
type VPCList struct {
	VPCs          []VPC  `json:"vpcs"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SubnetList is a page of subnets.
type SubnetList struct {
	Subnets       []Subnet `json:"subnets"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}

// PortList is a page of ports.
type PortList struct {
	Ports         []Port `json:"ports"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SecurityGroupList is a page of security groups.
type SecurityGroupList struct {
	SecurityGroups []SecurityGroup `json:"security_groups"`
	NextPageToken  string          `json:"next_page_token,omitempty"`
}

// Deleted is the answer to a DELETE.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// Owner is the org, project and id of a resource (state.Owned: the lists
// scope by them).
func (v VPC) Owner() (string, string, string)           { return v.OrgID, v.ProjectID, v.ID }
func (s Subnet) Owner() (string, string, string)        { return s.OrgID, s.ProjectID, s.ID }
func (p Port) Owner() (string, string, string)          { return p.OrgID, p.ProjectID, p.ID }
func (g SecurityGroup) Owner() (string, string, string) { return g.OrgID, g.ProjectID, g.ID }
